"""The errors the matting package raises for users: their messages are complete, one line each."""


class WeightsError(RuntimeError):
    """A model file is missing, unreadable or not the model it should be (bad input)."""


class DownloadError(RuntimeError):
    """A model could not be fetched (network, server, checksum): not the user's input."""


class ModelUnavailable(WeightsError):
    """A default model is not on disk and could not be downloaded (offline, no network)."""
