"""ID photos on the command line (``--image IN --output OUT --id-size passport [--sheet 4x6in]``).

Each picture becomes an ID photo at the size's pixel dimensions for ``--dpi``,
with the DPI in the file and, with ``--max-kb``, under that size. With
``--sheet`` the output is one print sheet (every input picture, cycled to
fill the paper). The background defaults to white here (authorities ask for a
plain light one); the output's extension picks JPEG or PNG. Inputs are never
overwritten (the same plan as photo mode).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

from compositing import ImageBackground, MediaError, make_background, read_image
from compositing.media import with_alpha
from idphoto import IdPhotoError, PhotoRequest
from matting.files import write_atomic
from realtime import say

from .build import build_id_maker
from .config import Settings
from .errors import PhotoError, WriteError
from .photo_mode import check_writable, list_images, plan_outputs, refuse_existing, remove_if_made

log = logging.getLogger(__name__)


def _format(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in (".jpg", ".jpeg"):
        return "jpg"
    if ext == ".png":
        return "png"
    raise PhotoError(f"{path.name}: ID photos are written as .jpg or .png")


def _write(path: Path, data: bytes, replace: bool) -> None:
    try:
        write_atomic(path, data, replace=replace)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None


def _picture_behind(settings: Settings, value: str) -> tuple[np.ndarray | None, Path | None]:
    """``(pixels, file)`` of a picture ``--background`` (a file, or a name in backgrounds/), else
    ``(None, None)``: colours, transparent and blur the maker makes itself. A bad value is
    refused here (BackgroundError: exit 2), before any model loads."""
    background = make_background(value, fit=settings.fit, blur_strength=settings.blur_strength,
                                 search_dirs=[settings.backgrounds_dir])
    try:
        if isinstance(background, ImageBackground):
            return background.image, background.path
        if getattr(background, "path", None) is not None:
            raise PhotoError(f"--background {value}: ID photos take a colour or a picture, not a video")
        return None, None
    finally:
        background.close()


def run_id_mode(settings: Settings) -> int:
    background = settings.background or "white"
    transparent = background.strip().lower() == "transparent"
    src, dst = Path(settings.image), Path(settings.output)
    picture, picture_file = _picture_behind(settings, background)
    maker = build_id_maker(settings)
    request = PhotoRequest(background=background, size=settings.id_size or "passport", dpi=settings.dpi or 300.0,
                           max_kb=settings.max_kb)
    try:
        if settings.sheet:
            if settings.id_size is None:
                log.warning("--sheet without --id-size: passport photos (35x45 mm); add --id-size SIZE for another")
            return _sheet(settings, maker, request, src, dst, picture, picture_file)
        # refuses to replace an input (or, without --overwrite, any existing file), before loading models
        targets = plan_outputs(src, dst, transparent, protected=(picture_file,) if picture_file else (),
                               overwrite=settings.overwrite)
        folder = dst if src.is_dir() else (dst.parent if str(dst.parent) else Path("."))
        made = not folder.exists()
        if src.is_dir():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PhotoError(f"cannot create output folder {folder}: {exc.strerror}") from None
        elif not folder.is_dir():
            raise PhotoError(f"output folder does not exist: {folder}")
        failed = []
        for source, target in targets:
            try:
                request.format = _format(target)
                picture_in = with_alpha(*read_image(source, with_opacity=True))
                result = maker.photo(picture_in, PhotoRequest(**vars(request)), background_image=picture)
                _write(target, result.data, settings.overwrite)
                for note in result.warnings:
                    log.warning("%s: %s", source.name, note)
                say(str(target), sys.stdout)
            except (IdPhotoError, MediaError, PhotoError) as exc:
                if not src.is_dir():  # one picture: its error is the run's (a folder goes on)
                    raise
                failed.append(f"{source.name}: {exc}")
                log.error("skipped %s: %s", source.name, exc)
        if failed:
            say(f"{len(failed)} of {len(targets)} pictures failed: " + "; ".join(failed))
            if len(failed) == len(targets):
                remove_if_made(folder, made)
            return 1
        return 0
    finally:
        maker.close()


def _sheet(settings, maker, request: PhotoRequest, src: Path, dst: Path, picture: np.ndarray | None,
           picture_file: Path | None) -> int:
    if dst.is_dir():
        raise PhotoError(f"--sheet writes one file: give --output a file name such as sheet.jpg, not {dst}")
    if not src.exists():
        raise PhotoError(f"input not found: {src}")
    inputs = list_images(src) if src.is_dir() else [src]
    if not inputs:
        raise PhotoError(f"no pictures in {src}")
    if any(_same(dst, p) for p in inputs + ([picture_file] if picture_file else [])):
        raise PhotoError(f"{dst} is an input picture: refusing to overwrite it; choose another --output")
    if not settings.overwrite:
        refuse_existing([dst])
    check_writable(dst.parent, made=False)  # before the model runs on every picture
    request.format = _format(dst)
    # read in turn, and only while the sheet has room (a folder of big pictures is not all in memory)
    pictures = [lambda source=source: with_alpha(*read_image(source, with_opacity=True)) for source in inputs]
    names = [source.name for source in inputs]
    result = maker.sheet(pictures, request, paper=settings.sheet, background_image=picture, names=names)
    for note in result.warnings:  # (one picture: named here, as a single photo's notes are; several: by the maker)
        log.warning("%s: %s", names[0], note) if len(names) == 1 else log.warning("%s", note)
    _write(dst, result.data, settings.overwrite)
    log.info("%d copies on %s at %g DPI", result.count, settings.sheet, result.dpi)
    say(str(dst), sys.stdout)
    if result.left_out:  # as a batch of photos: exit code 1 when some pictures are missing
        say(f"{len(result.left_out)} of {len(inputs)} pictures are not on the sheet: {', '.join(result.left_out)}")
        return 1
    return 0


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and a.samefile(b)
    except OSError:
        return False
