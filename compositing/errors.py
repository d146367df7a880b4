"""The errors the compositing package raises for users: one complete line each."""


class MediaError(ValueError):
    """A picture or video cannot be read (bad input)."""


class BackgroundError(MediaError):
    """A background value or file cannot be used (bad input)."""
