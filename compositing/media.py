"""Decoding pictures and videos' first checks: BGR uint8 out, EXIF orientation applied, huge files tamed.

Pillow reads the header (size, EXIF orientation) without decoding pixels, so a
picture announcing 400 megapixels is refused before any memory is spent on it,
and a 12000×12000 JPEG is decoded at 1/2–1/8 size in the DCT domain (OpenCV's
reduced decoding). OpenCV decodes the pixels (it keeps 16-bit depth and alpha,
which are then converted to BGR uint8).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import cv2
import numpy as np

from .errors import MediaError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".bmp", ".webp", ".avif", ".tif", ".tiff",
                    ".jp2", ".pgm", ".ppm"}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".gif"}
#: Pictures above this many pixels are refused before decoding (a 12000×12000 image is 144 Mpx);
#: just under Pillow's own ceiling (2 × ``Image.MAX_IMAGE_PIXELS``), so one limit and one message apply.
MAX_PICTURE_PIXELS = 178_000_000
#: OpenCV flags for decoding at 1/2, 1/4 and 1/8 of the size (JPEG: in the DCT domain).
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
#: EXIF orientation tag value -> the operation that shows the picture upright.
_ORIENT = {
    2: lambda im: cv2.flip(im, 1),
    3: lambda im: cv2.rotate(im, cv2.ROTATE_180),
    4: lambda im: cv2.flip(im, 0),
    5: lambda im: cv2.flip(cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE), 1),
    6: lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
    7: lambda im: cv2.flip(cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE), 1),
    8: lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


#: Frame rates taken as a file or camera reports them (a time-lapse at one frame every 10 s, a
#: 1000-fps slow-motion clip); outside them (0, NaN, a broken header's 90000) the default applies.
MIN_FPS, MAX_FPS = 0.1, 1000.0


def sane_fps(value: float | None, default: float = 30.0) -> float:
    """A container's or a camera's reported frame rate, or ``default`` when it is 0, NaN or absurd."""
    return float(value) if value and MIN_FPS <= value <= MAX_FPS else default


def opencv_path(path: str | os.PathLike, error: type[Exception] = MediaError) -> str:
    """``path`` as a string OpenCV's video functions can take; ``error`` for a name that is not
    valid UTF-8 (bytes Python keeps as surrogates: OpenCV crashes the process on them)."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{text.encode('utf-8', 'backslashreplace').decode()}: the file name is not valid "
                         f"UTF-8, which OpenCV cannot open; rename the file") from None
    return text


def _is_tiff(data: np.ndarray) -> bool:
    """TIFF (and BigTIFF) magic: OpenCV's TIFF decoder applies the EXIF orientation itself, always."""
    return bytes(data[:4]) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any decoded picture (gray, BGRA, 16-bit, float) as BGR uint8."""
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def probe_image(path: str | os.PathLike) -> tuple[int, int, int | None] | None:
    """``(width, height, exif_orientation)`` from the header alone; ``None`` if Pillow cannot tell."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # our own limit applies; a damaged header is told in our one line ("Corrupt EXIF data" of a
            # TIFF cut short came as a raw Python warning above it)
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                width, height = im.size
                orientation = _orientation(im)
    except Image.DecompressionBombError:  # far over the limit: Pillow refuses to open it at all
        raise MediaError(f"image is too large (over {MAX_PICTURE_PIXELS / 1e6:.0f} megapixels): {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    return width, height, orientation if isinstance(orientation, int) else None


def _orientation(im) -> int | None:
    """The EXIF orientation tag from the header only (``getexif()`` would decode a PNG's pixels)."""
    from PIL import Image

    try:
        if im.format in ("TIFF", "MPO", "JPEG") or "exif" not in im.info:
            exif = im.getexif() if im.format in ("TIFF", "MPO", "JPEG") else None
        else:
            exif = Image.Exif()
            exif.load(im.info["exif"])
        return exif.get(0x0112) if exif is not None else None
    except Exception:  # a damaged EXIF block: show the picture as stored
        return None


def opacity(image: np.ndarray) -> np.ndarray | None:
    """A decoded picture's own alpha channel as float32 in [0, 1] (h×w), or None when it has none
    or is opaque everywhere."""
    if image.ndim != 3 or image.shape[2] != 4:
        return None
    alpha = image[:, :, 3]
    if alpha.dtype == np.uint8:
        alpha = alpha.astype(np.float32) / 255.0
    elif alpha.dtype == np.uint16:
        alpha = alpha.astype(np.float32) / 65535.0
    else:
        alpha = np.clip(alpha.astype(np.float32), 0.0, 1.0)
    return None if alpha.min() >= 1.0 else alpha


def shown_over_grey(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A BGR picture with its own alpha (float32 h×w in [0, 1]) as a viewer shows it, on mid-grey:
    what a model should see (the colours stored under transparent pixels differ by program)."""
    weight = alpha[..., None]
    return (image * weight + 128.0 * (1.0 - weight) + 0.5).astype(np.uint8)


def with_alpha(image: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """``read_image(..., with_opacity=True)``'s pair as one array: BGR, or BGRA uint8 when it has an alpha."""
    if alpha is None:
        return image
    return np.dstack([image, np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)])


def split_alpha(picture: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """BGR -> (it, None); BGRA uint8 -> (BGR, alpha float32 in [0, 1], or None when opaque everywhere)."""
    if picture.ndim == 3 and picture.shape[2] == 4:
        return np.ascontiguousarray(picture[:, :, :3]), opacity(picture)
    return picture, None


def read_image(path: str | os.PathLike, max_side: int | None = None, with_opacity: bool = False,
               quiet: bool = False):
    """Decode a picture as BGR uint8, upright (EXIF), at most ``max_side`` px per side if given.
    ``with_opacity``: ``(image, its alpha channel or None)`` (see :func:`opacity`; shrunk with the
    picture for ``max_side``, except where one is decoded at 1/2 to 1/8 size straight away, over
    about 33 megapixels for a 3840-px side: those have none). ``quiet``: a shrink is no news (a
    thumbnail), so it is not logged."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"file not found: {path}")
    if path.is_dir():
        raise MediaError(f"expected an image file, got a folder: {path}")
    if not path.is_file():
        raise MediaError(f"not a regular file (a pipe or a device): {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"image file is empty: {path}")
    if not os.access(path, os.R_OK):
        raise MediaError(f"cannot read {path}: permission denied")
    header = probe_image(path)
    pixels = header[0] * header[1] if header else None
    if pixels is not None and pixels > MAX_PICTURE_PIXELS:
        raise MediaError(f"image is too large ({pixels / 1e6:.0f} megapixels; at most "
                         f"{MAX_PICTURE_PIXELS / 1e6:.0f}): {path}")
    reduce = 1
    if max_side and pixels:
        # A huge picture (a 12000x12000 panorama) is decoded at 1/2, 1/4 or 1/8 size
        # straight away: seconds and gigabytes saved.
        while reduce < 8 and pixels / (reduce * 2) ** 2 >= (max_side * max_side * 9 / 16):
            reduce *= 2
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {(exc.strerror or str(exc)).lower()}") from None
    if _truncated_png(data):  # (libpng would print its own line about it on top of ours)
        raise MediaError(f"not a readable image (unknown format, or truncated): {path}")
    if reduce > 1:  # IMREAD_REDUCED_* applies the EXIF orientation itself
        image = cv2.imdecode(data, _REDUCED[reduce])
    else:
        # IMREAD_UNCHANGED keeps 16-bit and alpha but skips EXIF orientation: applied below.
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
        if image is not None and header and header[2] in _ORIENT and not _is_tiff(data):
            image = _ORIENT[header[2]](image)
    if image is None or image.size == 0:
        raise MediaError(f"not a readable image (unknown format, or truncated): {path}")
    alpha = opacity(image) if with_opacity else None
    image = to_bgr8(image)
    if max_side and max(image.shape[:2]) > max_side:
        scale = max_side / max(image.shape[:2])
        width, height = (header[0], header[1]) if header else (image.shape[1], image.shape[0])
        if header and header[2] in (5, 6, 7, 8):  # shown turned a quarter: the size as it is seen
            width, height = height, width
        log.log(logging.DEBUG if quiet else logging.INFO, "%s is %dx%d; using it at most %d px per side",
                path.name, width, height, max_side)
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA) if alpha is not None else None
    return (image, alpha) if with_opacity else image


def _truncated_png(data: np.ndarray) -> bool:
    """A PNG file cut short: every whole PNG has an IEND chunk (looked for near the end first;
    anything a program appended after it is no reason to refuse the picture)."""
    if data[:8].tobytes() != b"\x89PNG\r\n\x1a\n":
        return False
    end = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: empty, its CRC fixed
    return end not in data[-(1 << 20):].tobytes() and end not in data.tobytes()


def _cut_short(path: Path) -> bool:
    """A JPEG or PNG file that does not reach its end marker: JPEG's EOI (FF D9; a file with
    data appended after it, a phone's motion photo, is decoded to tell), PNG's IEND chunk."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(max(0, size - 64))
            tail = f.read()
        if head[:3] == b"\xff\xd8\xff":
            return b"\xff\xd9" not in tail and cv2.imdecode(np.fromfile(str(path), dtype=np.uint8),
                                                             cv2.IMREAD_REDUCED_GRAYSCALE_8) is None
        if head == b"\x89PNG\r\n\x1a\n":
            return b"IEND" not in tail and _truncated_png(np.fromfile(str(path), dtype=np.uint8))
        return False
    except OSError:
        return True


def looks_readable(path: str | os.PathLike) -> bool:
    """A cheap check that a picture's header (or a video's first frame) can be decoded, and that
    a JPEG or PNG is whole (one cut short was counted among the backgrounds until first shown)."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return False
    except OSError:
        return False
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        try:
            cap = cv2.VideoCapture(opencv_path(path))
        except MediaError:
            return False
        try:
            return bool(cap.isOpened() and cap.grab())
        finally:
            cap.release()
    try:
        readable = probe_image(path) is not None or cv2.haveImageReader(str(path))
    except MediaError:  # too large: read_image refuses it too
        return False
    return readable and not _cut_short(path)
