"""Photo mode: an RGBA cut-out or a person over a new background, at full resolution.

One file or a whole folder. Outputs are encoded in memory and renamed into
place, so an existing file is never replaced by a partial one; in a folder one
unreadable picture is reported and the others are still processed.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from matting.engine import MattingEngine
from realtime.compositor import IMAGE_EXTENSIONS, Background, Compositor, MediaError, read_image

log = logging.getLogger(__name__)

TRANSPARENT_FORMATS = {".png", ".webp", ".tif", ".tiff"}


class PhotoError(RuntimeError):
    """A photo-mode problem that ends the run; the message is for the user."""


@dataclass
class BatchReport:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def cut_out(engine: MattingEngine, image: np.ndarray, background: Background, compositor: Compositor) -> np.ndarray:
    """BGR uint8 picture -> BGRA cut-out (transparent background) or BGR composite."""
    alpha = engine.infer(image)
    return compositor.composite(image, alpha, background, now=0.0, rgba=True)


def write_image_atomic(path: Path, image: np.ndarray) -> None:
    ext = path.suffix.lower()
    if image.ndim == 3 and image.shape[2] == 4 and ext not in TRANSPARENT_FORMATS:
        raise PhotoError(f"{path.name}: {ext or 'this format'} cannot hold transparency; "
                         f"use a .png output or pick a --background")
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in {".jpg", ".jpeg"} else []
    try:
        ok, encoded = cv2.imencode(ext or ".png", image, params)
    except cv2.error:
        ok = False
    if not ok:
        raise PhotoError(f"cannot write {ext or 'this'} images: use .png or .jpg ({path})")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise PhotoError(f"output folder does not exist: {folder}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise PhotoError(f"cannot write to {folder}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(encoded.tobytes())
        os.replace(tmp, path)
    except OSError as exc:
        raise PhotoError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def run_photo(engine: MattingEngine, input_path: str, output_path: str, background: Background,
              compositor: Compositor, progress: bool = True) -> BatchReport:
    """Process one picture or every picture of a folder; see the module docstring."""
    src, dst = Path(input_path), Path(output_path)
    report = BatchReport()
    if not src.exists():
        raise PhotoError(f"input not found: {src}")
    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise PhotoError(f"--image is a folder, so --output must be a folder too: {dst} is a file")
        try:
            dst.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PhotoError(f"cannot create output folder {dst}: {exc.strerror}") from None
        inputs = list_images(src)
        if not inputs:
            raise PhotoError(f"no pictures ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {src}")
        ext = ".png" if background.transparent else ".jpg"
        targets = [(p, dst / (p.stem + ext)) for p in inputs]
    else:
        if dst.is_dir():
            dst = dst / (src.stem + (".png" if background.transparent else ".jpg"))
        targets = [(src, dst)]

    bar = None
    if progress and len(targets) > 1:
        try:
            from tqdm import tqdm

            bar = tqdm(total=len(targets), unit="img", desc="photos")
        except ImportError:
            bar = None
    try:
        for source, target in targets:
            try:
                image = read_image(source)
                result = cut_out(engine, image, background, compositor)
                write_image_atomic(target, result)
                report.written.append(target)
                log.info("wrote %s (%dx%d)", target, result.shape[1], result.shape[0])
            except (MediaError, PhotoError) as exc:
                if len(targets) == 1:
                    raise PhotoError(str(exc)) from None
                log.error("skipped %s: %s", source.name, exc)
                report.failed.append((source, str(exc)))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return report
