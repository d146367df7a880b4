"""Uploaded files: checked (size, type, pixel count from the header) before decoding, kept in one temp folder.

A request's file name never becomes a path: uploads are written under a
random name inside the server's own temporary folder (removed when the
server stops), and pictures for the backgrounds folder get a name made of
safe characters only, never replacing a file that is there.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import tempfile
import unicodedata
import warnings
from pathlib import Path

import numpy as np

from compositing import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, MediaError, read_image
from compositing.media import with_alpha
from compositing.media import looks_readable, probe_image
from matting.files import write_atomic

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_MB = 25
DEFAULT_MAX_PIXELS = 50_000_000  # a 12-MP phone picture is 12; a 50-MP camera still fits


class UploadError(ValueError):
    """A refused upload; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def one_upload(files: list, field: str, hint: str = ""):
    """The one file a request sends in ``field`` (several were silently reduced to the last)."""
    if len(files) != 1:
        raise UploadError(f"send one {field} per request, not {len(files)}{hint}", 400)
    return files[0]


class UploadFolder:
    """The server's private temporary folder for uploads; :meth:`cleanup` removes it."""

    def __init__(self, max_pixels: int = DEFAULT_MAX_PIXELS, parent: str | None = None):
        self.path = Path(tempfile.mkdtemp(prefix="modnet-live-web-", dir=parent))
        self.max_pixels = int(max_pixels)

    def store(self, data: bytes, suffix: str = "") -> Path:
        """Write ``data`` under a random name in the folder (only ``suffix``'s letters survive)."""
        ext = suffix.lower() if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix.lower() or "") else ""
        path = self.path / (secrets.token_hex(8) + ext)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return path

    def read_picture(self, data: bytes, filename: str = "") -> np.ndarray:
        """Decode an uploaded picture (BGR uint8, upright) after checking its header."""
        if not data:
            raise UploadError("the uploaded file is empty")
        path = self.store(data, Path(filename or "").suffix)
        try:
            return self.read_picture_file(path)
        finally:
            path.unlink(missing_ok=True)

    def read_picture_file(self, path: str | os.PathLike) -> np.ndarray:
        try:
            empty = os.path.getsize(path) == 0
        except OSError:  # gone meanwhile (a cache cleaned up)
            raise UploadError("the uploaded file is gone: upload it again", 415) from None
        if empty:
            raise UploadError("the uploaded file is empty")
        try:
            header = probe_image(path)
        except MediaError:
            raise UploadError(f"picture too large: far over the {self.max_pixels / 1e6:.0f} megapixels this server "
                              f"accepts", 413) from None
        if header is None:
            raise UploadError("not a picture, or a damaged one: upload a JPEG, PNG or WebP photo", 415)
        width, height, _ = header
        if width * height > self.max_pixels:
            raise UploadError(f"picture too large: {width}x{height} is {round(width * height / 1e6, 1):g} megapixels, "
                              f"this server accepts up to {round(self.max_pixels / 1e6, 1):g}", 413)
        try:
            return with_alpha(*read_image(path, with_opacity=True))  # BGR, or BGRA with transparency
        except MediaError:
            raise UploadError("not a picture that can be decoded (damaged or unsupported)", 415) from None

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


#: Pillow's formats that are still pictures (it also knows raw MPEG video, among others)
STILL_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "BMP", "DIB", "TIFF", "GIF", "JPEG2000", "PPM", "AVIF", "HEIF", "ICO",
                 "TGA", "PCX", "huge"}


def picture_format(path: str | os.PathLike) -> str | None:
    """The still-picture format Pillow finds in a file by its content (``"JPEG"``, ``"PNG"``,
    ``"GIF"``), whatever its name says; None for anything else (a video)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.format if im.format in STILL_FORMATS else None
    except Image.DecompressionBombError:  # a picture, far too large to open
        return "huge"
    except Exception:  # not a picture Pillow knows: a video, or something else
        return None


def safe_stem(filename: str, letters: str = "ascii", fallback: str = "background") -> str:
    """A file name's stem reduced to letters, digits, ``-`` and ``_`` (never empty, never hidden):
    ASCII ones (a background's name, typed and matched later), or with ``letters="any"`` those of
    any script (a download's name: 张三.jpg stays 张三, not "jpg")."""
    stem = unicodedata.normalize("NFKC" if letters == "any" else "NFKD", Path(Path(filename or "").name).stem)
    if letters != "any":
        stem = stem.encode("ascii", "ignore").decode()
    if letters == "any":  # letters, digits and marks of any script (हिन्दी keeps its vowel signs)
        stem = "".join(c if unicodedata.category(c)[0] in "LNM" or c in "-_" else " " for c in stem)
        stem = re.sub(r"\s+", "-", stem.strip())
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem) if letters != "any" else stem
    stem = stem.strip("-_")[:60]
    return stem or fallback


def save_background(data: bytes, filename: str, folder: str | os.PathLike, uploads: UploadFolder) -> Path:
    """Check an uploaded picture or video and save it in ``folder`` under a new safe name."""
    ext = Path(filename or "").suffix.lower()
    if ext not in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
        raise UploadError(f"backgrounds must be pictures or videos ({', '.join(sorted(IMAGE_EXTENSIONS))}, "
                          f"{', '.join(sorted(VIDEO_EXTENSIONS))}), got {ext or 'a file without extension'}", 415)
    if not data:
        raise UploadError("the uploaded file is empty")
    staged = uploads.store(data, ext)
    try:
        if ext in IMAGE_EXTENSIONS:
            uploads.read_picture_file(staged)  # header, pixel count and a full decode
        else:
            picture = picture_format(staged)
            if picture is not None and not (picture == "GIF" and ext == ".gif"):
                raise UploadError(f"this is a picture ({picture}), not a video: upload it with a picture's "
                                  f"extension, such as .jpg or .png", 415)
            if not looks_readable(staged):
                raise UploadError("not a video that can be read (damaged or unsupported)", 415)
    finally:
        staged.unlink(missing_ok=True)
    target_dir = Path(folder)
    target_dir.mkdir(parents=True, exist_ok=True)
    stem = safe_stem(filename)
    for n in range(1, 10_000):
        target = target_dir / (f"{stem}{ext}" if n == 1 else f"{stem}-{n}{ext}")
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # claim the name: never replace
        except FileExistsError:
            continue
        os.close(fd)
        try:
            write_atomic(target, data)
        except OSError:
            target.unlink(missing_ok=True)
            raise
        log.info("saved uploaded background %s", target)
        return target
    raise UploadError("too many backgrounds with this name", 409)
