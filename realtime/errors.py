"""The errors the live pipeline raises for users: one complete line each."""


class SourceError(RuntimeError):
    """A camera, video or picture source could not be opened or read."""


class SinkError(RuntimeError):
    """A sink (virtual camera, recording, window) could not be opened; the message says what to do."""


class PipelineError(RuntimeError):
    """A worker thread or the render loop failed; the message names which and why."""
