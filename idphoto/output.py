"""ID-photo file output: PNG or JPEG bytes with the print DPI in the metadata and an optional size limit.

Images come in OpenCV order (BGR or BGRA, uint8). The DPI goes into the JPEG JFIF density or the PNG pHYs
chunk, so a print shop or an upload form reads the intended physical size. ``max_kb`` (many online forms
cap the file size) is met without resizing: for JPEG by the highest quality that fits (binary search from
95 down to 10), for PNG by maximum compression, and otherwise by a one-line :class:`IdPhotoError`.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from idphoto.errors import IdPhotoError, SizeLimitError

JPEG_QUALITY_MAX = 95
JPEG_QUALITY_MIN = 10
_FORMATS = {"png": "png", "jpg": "jpg", "jpeg": "jpg"}
_CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg"}


def normalise_format(fmt: str) -> str:
    """``png`` or ``jpg`` (``jpeg`` and a leading dot accepted, any case)."""
    key = str(fmt).strip().lower().lstrip(".")
    if key not in _FORMATS:
        raise IdPhotoError(f"unknown image format {fmt!r}: use png or jpg")
    return _FORMATS[key]


def content_type(fmt: str) -> str:
    """The HTTP Content-Type for ``fmt`` (``image/png`` or ``image/jpeg``)."""
    return _CONTENT_TYPES[normalise_format(fmt)]


def _to_pil(image: np.ndarray, fmt: str) -> Image.Image:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3) or \
            (image.ndim == 3 and image.shape[2] not in (3, 4)) or image.size == 0:
        raise IdPhotoError("the image to save must be a non-empty uint8 array: grey H×W, BGR H×W×3 or BGRA H×W×4")
    if image.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(image), "L")
    if image.shape[2] == 4:
        if fmt == "jpg":
            if (image[:, :, 3] < 255).any():
                raise IdPhotoError("JPEG cannot hold transparency: choose a background colour or PNG")
            return Image.fromarray(np.ascontiguousarray(image[:, :, 2::-1]), "RGB")
        return Image.fromarray(np.ascontiguousarray(image[:, :, [2, 1, 0, 3]]), "RGBA")
    return Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]), "RGB")


def _save(pil: Image.Image, fmt: str, dpi: float, quality: int = JPEG_QUALITY_MAX, smallest: bool = False) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpg":
        pil.save(buf, "JPEG", quality=quality, dpi=(dpi, dpi), optimize=True, subsampling="4:2:0")
    else:
        pil.save(buf, "PNG", dpi=(dpi, dpi), optimize=smallest, compress_level=9 if smallest else 6)
    return buf.getvalue()


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def encode(image: np.ndarray, fmt: str, dpi: float, max_kb: float | None = None,
           quality: int = JPEG_QUALITY_MAX, what: str = "photo") -> bytes:
    """``image`` (BGR/BGRA/grey uint8) as PNG or JPEG bytes carrying ``dpi``, within ``max_kb`` if given.

    JPEG without a limit uses ``quality``; with a limit, the highest quality from ``quality`` down to 10
    whose file is at most ``max_kb`` × 1024 bytes (nothing else changes: no resizing). PNG with a limit is
    saved at compression level 9 with optimisation. A BGRA image with any transparency cannot be a JPEG.
    Raises :class:`IdPhotoError` when the limit cannot be met, saying the smallest size reachable (of the
    ``what``: "photo", or "sheet").
    """
    fmt = normalise_format(fmt)
    if not (isinstance(dpi, (int, float)) and 10 <= dpi <= 4800):
        raise IdPhotoError(f"DPI must be a number from 10 to 4800, not {dpi!r}")
    if max_kb is not None and not (isinstance(max_kb, (int, float)) and max_kb > 0):
        raise IdPhotoError(f"the size limit must be a positive number of KB, not {max_kb!r}")
    quality = int(min(max(quality, JPEG_QUALITY_MIN), JPEG_QUALITY_MAX))
    pil = _to_pil(image, fmt)
    if max_kb is None:
        return _save(pil, fmt, dpi, quality)
    limit = int(max_kb * 1024)
    if fmt == "png":
        data = _save(pil, fmt, dpi, smallest=True)
        if len(data) > limit:
            raise SizeLimitError(f"the PNG is {_kb(len(data))} at best, over the {max_kb:g} KB limit: "
                               + ("allow more KB (a transparent cut-out is PNG only)" if image.ndim == 3
                                  and image.shape[2] == 4 and (image[:, :, 3] < 255).any()
                                  else "choose jpg for a smaller file"))
        return data
    return _fit_jpeg(pil, dpi, limit, max_kb, quality, what)


def _fit_jpeg(pil: Image.Image, dpi: float, limit: int, max_kb: float, quality: int, what: str = "photo") -> bytes:
    """The highest JPEG quality in [10, quality] whose file fits ``limit`` bytes (sizes grow with quality)."""
    best = _save(pil, "jpg", dpi, quality)
    if len(best) <= limit:
        return best
    smallest = _save(pil, "jpg", dpi, JPEG_QUALITY_MIN)
    if len(smallest) > limit:
        raise SizeLimitError(f"cannot fit the {what} in {max_kb:g} KB: the smallest JPEG at this pixel size is "
                           f"{_kb(len(smallest))} (quality {JPEG_QUALITY_MIN}); allow more KB")
    low, high, best = JPEG_QUALITY_MIN, quality, smallest   # low fits, high does not
    while high - low > 1:
        mid = (low + high) // 2
        data = _save(pil, "jpg", dpi, mid)
        if len(data) <= limit:
            low, best = mid, data
        else:
            high = mid
    return best
