"""The web server's errors for the command line (one line each)."""


class WebError(RuntimeError):
    """The server cannot start (port taken, an address this machine does not have)."""
