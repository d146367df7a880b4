"""ID photos: standard sizes with the head placed as the authority's rule says, DPI, size limits, print sheets.

Imports :mod:`matting` (the matte, the face model) and :mod:`compositing`
(backgrounds, blending). Pictures are BGR uint8 in and out (BGRA when
transparent); sizes in millimetres, pixels = round(mm / 25.4 × DPI).
"""

from .errors import FaceNotFound, IdPhotoError, SeveralFaces
from .maker import IdPhotoMaker, PhotoRequest, PhotoResult
from .sizes import PAPERS, PRESETS, PhotoSize, papers_json, parse_paper, parse_size, presets_json

__all__ = ["FaceNotFound", "IdPhotoError", "SeveralFaces", "IdPhotoMaker", "PhotoRequest", "PhotoResult",
           "PAPERS", "PRESETS", "PhotoSize", "papers_json", "parse_paper", "parse_size", "presets_json"]
