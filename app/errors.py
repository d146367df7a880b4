"""The errors the app raises for users (one line each); ``cli.EXIT_CODES`` maps every error to its exit code."""


class UsageError(ValueError):
    """A bad command-line or config value, or options that do not go together."""


class PhotoError(RuntimeError):
    """A photo-mode input or output that cannot be used (a folder, a clash with an input, ...)."""


class WriteError(PhotoError):
    """A photo output that could not be written when it came to it (a full disk): the run failed."""


class MissingPackage(RuntimeError):
    """A required package is not installed."""
