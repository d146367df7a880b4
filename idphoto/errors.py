"""The ID-photo errors: each one line, in plain words, safe to show a user (CLI, REST, web UI)."""


class IdPhotoError(ValueError):
    """A request that cannot be met: bad size or paper, no face, several faces, over the size limit."""


class FaceNotFound(IdPhotoError):
    """The face model found no face in the picture."""


class SeveralFaces(IdPhotoError):
    """The face model found more than one face; an ID photo shows one person."""


class SizeLimitError(IdPhotoError):
    """The photo cannot be made as small as the asked file-size limit."""


class PersonNotFound(IdPhotoError):
    """The matte does not separate the person from the background (nothing to put on a new one)."""


class PictureTurned(IdPhotoError):
    """The face is on its side or upside down: the picture needs turning upright first."""
