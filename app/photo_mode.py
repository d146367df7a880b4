"""Photo mode (``--image``): an RGBA cut-out or a person over a new background, at full resolution.

One file or a whole folder. Outputs are encoded in memory and renamed into
place (with the permissions the user's umask gives), so an existing output is
never replaced by a partial one; in a folder one unreadable picture is
reported and the others are still processed. An input is never overwritten:
an output that would land on an input is refused.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from compositing import IMAGE_EXTENSIONS, Background, Compositor, MediaError, read_image
from compositing.media import VIDEO_EXTENSIONS, shown_over_grey
from matting import NO_PERSON, MattingEngine, alpha_to_numpy, finds_person
from matting.files import write_atomic
from realtime import say

from .build import build_background, build_compositor, build_engine
from .config import Settings
from .errors import PhotoError, WriteError

log = logging.getLogger(__name__)

TRANSPARENT_FORMATS = {".png", ".webp", ".tif", ".tiff"}
WRITABLE_FORMATS = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}


@dataclass
class BatchReport:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def cut_out(engine: MattingEngine, image: np.ndarray, background: Background,
            compositor: Compositor, opacity: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """BGR uint8 picture -> (BGRA cut-out (transparent background) or BGR composite, whether the
    matte holds a person at all). ``opacity``: the picture's own alpha (float32 h×w in [0, 1]), if
    it has one: what it had made transparent stays so (the cut-out's alpha is at most it), and the
    picture is used as shown, over a plain grey, never the colours stored under its transparency
    (which differ from program to program: the model, the edge refinement and the colour
    decontamination all looked at them)."""
    seen = image if opacity is None else shown_over_grey(image, opacity)
    alpha = engine.infer(seen)
    person = finds_person(alpha_to_numpy(alpha))
    if opacity is not None:
        alpha = compositor.full_alpha(alpha, seen) * opacity  # (refined along the picture's edges first)
    return compositor.composite(seen, alpha, background, now=0.0, rgba=True), person


def check_output_name(path: Path, transparent: bool) -> None:
    """Refuse an output name whose format is unknown or cannot hold what will be written."""
    ext = path.suffix.lower()
    if ext not in WRITABLE_FORMATS:
        raise PhotoError(f"{path.name}: {'no file extension' if not ext else f'cannot write {ext} pictures'}; "
                         f"name the output .png (keeps transparency) or .jpg")
    if transparent and ext not in TRANSPARENT_FORMATS:
        raise PhotoError(f"{path.name}: {ext} cannot hold transparency; use a .png output or pick a --background")


def write_image_atomic(path: Path, image: np.ndarray, replace: bool = False) -> None:
    """``image`` encoded by ``path``'s extension, written whole or not at all; an existing file is
    replaced only with ``replace`` (--overwrite), even one made while the picture was processed."""
    ext = path.suffix.lower()
    check_output_name(path, transparent=image.ndim == 3 and image.shape[2] == 4)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in {".jpg", ".jpeg"} else []
    try:
        ok, encoded = cv2.imencode(ext, image, params)
    except cv2.error:
        ok = False
    if not ok:
        raise PhotoError(f"cannot write {ext} images: use .png or .jpg ({path})")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise PhotoError(f"output folder does not exist: {folder}")
    try:
        write_atomic(path, encoded.tobytes(), replace=replace)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None


#: What a folder of pictures is made of: a single ``--image`` takes a GIF (its first frame) too.
FOLDER_PICTURES = IMAGE_EXTENSIONS | {".gif"}


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FOLDER_PICTURES)


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def plan_outputs(src: Path, dst: Path, transparent: bool, protected: tuple[Path, ...] = (),
                 overwrite: bool = False) -> list[tuple[Path, Path]]:
    """``(input, output)`` pairs; refuses (PhotoError) anything that would replace an input
    (or one of the ``protected`` files, such as the background picture), and, unless
    ``overwrite``, an output file that exists already; of a folder, the pictures whose results
    are there already are left out (with a warning), all of them refused: before anything is written."""
    try:
        return _plan(src, dst, transparent, protected, overwrite)
    except OSError as exc:  # a name too long for the file system, a path through a file, ...
        raise PhotoError(f"cannot use {exc.filename or dst}: {(exc.strerror or str(exc)).lower()}") from None


def _plan(src: Path, dst: Path, transparent: bool, protected: tuple[Path, ...], overwrite: bool):
    ext = ".png" if transparent else ".jpg"
    if not src.exists():
        raise PhotoError(f"input not found: {src}")
    if src.suffix.lower() in VIDEO_EXTENSIONS - {".gif"}:
        raise PhotoError(f"{src} is a video: --image takes pictures; convert a video with --source {src} "
                         f"--every-frame --record OUT.mp4")
    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise PhotoError(f"--image is a folder, so --output must be a folder too: {dst} is a file")
        if not dst.exists() and dst.suffix.lower() in IMAGE_EXTENSIONS:
            raise PhotoError(f"--image is a folder, so --output must be a folder, not a picture name: {dst}")
        if _file_id(src) is not None and _file_id(src) == _file_id(dst):
            raise PhotoError(f"--output {dst} is the input folder: the originals would be replaced; "
                             f"write into another folder")
        inputs = list_images(src)
        if not inputs:
            raise PhotoError(f"no pictures ({', '.join(sorted(FOLDER_PICTURES))}) in {src}")
        # a.jpg and a.png in one folder: a_jpg and a_png, both (each picture's name never depends on
        # the order of the others: a.bmp added later took "a.png", a.jpg's result, as its own)
        shared = Counter(picture.stem.lower() for picture in inputs)
        pairs, used = [], set()
        for picture in inputs:
            stem = picture.stem if shared[picture.stem.lower()] == 1 else \
                f"{picture.stem}_{picture.suffix.lstrip('.').lower()}"
            target, n = dst / (stem + ext), 1
            while target.name.lower() in used:  # (a_jpg.png itself in the folder too)
                suffix = picture.suffix.lstrip(".").lower() + ("" if n == 1 else f"_{n}")
                target, n = dst / f"{picture.stem}_{suffix}{ext}", n + 1
            used.add(target.name.lower())
            pairs.append((picture, target))
    else:
        pairs = [(src, dst / (src.stem + ext) if dst.is_dir() else dst)]
    check_writable(dst if src.is_dir() else pairs[0][1].parent, made=src.is_dir())
    # one stat per file: a folder of thousands of pictures is planned in milliseconds
    keep = {i for i in map(_file_id, [p for p, _ in pairs] + list(protected)) if i is not None}
    for _, target in pairs:
        if _file_id(target) in keep:
            raise PhotoError(f"{target} is an input picture: refusing to overwrite it; choose another --output")
    if not src.is_dir():
        check_output_name(pairs[0][1], transparent)
    if overwrite:
        return pairs
    if not src.is_dir():
        refuse_existing([pairs[0][1]])
        return pairs
    # a folder run again (pictures added since): the results already there are kept, not redone
    existing = {target for _, target in pairs if os.path.lexists(target)}  # a set: thousands of pictures
    if len(existing) == len(pairs):
        raise PhotoError(f"all {len(pairs)} results are in {dst} already: nothing to do; add --overwrite "
                         f"to make them again, or choose another --output folder")
    if existing:
        kept = sorted(existing)
        names = ", ".join(p.name for p in kept[:3]) + (", ..." if len(kept) > 3 else "")
        log.warning("kept %d result(s) already in %s (%s): only the other %d picture(s) are processed; add "
                    "--overwrite to redo them all", len(existing), dst, names, len(pairs) - len(existing))
    return [(source, target) for source, target in pairs if target not in existing]


def remove_if_made(folder: Path, made: bool) -> None:
    """A batch's output folder made by this run and left empty (every picture failed) is not left behind."""
    if made:
        try:
            folder.rmdir()  # only if empty
        except OSError:
            pass


def check_writable(folder: Path, made: bool) -> None:
    """PhotoError, before any model loads, for an output folder that is missing or cannot be
    written. ``made``: a batch's folder, made with its parents: its first existing parent is checked."""
    folder = folder if str(folder) else Path(".")
    while made and not folder.exists() and folder.parent != folder:
        folder = folder.parent
    if not folder.is_dir():
        raise PhotoError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise PhotoError(f"output folder is not writable: {folder}")


def refuse_existing(targets: list[Path]) -> None:
    """PhotoError naming an output that exists already (``--overwrite`` replaces it)."""
    for target in targets:
        if os.path.lexists(target):
            raise PhotoError(f"{target} exists: refusing to overwrite it; choose another --output, "
                             f"or add --overwrite to replace it")


def run_photo(engine: MattingEngine, input_path: str, output_path: str, background: Background,
              compositor: Compositor, progress: bool = True,
              targets: list[tuple[Path, Path]] | None = None, overwrite: bool = False) -> BatchReport:
    """Process one picture or every picture of a folder; see the module docstring.

    ``targets``: the plan from :func:`plan_outputs`, if already made; ``overwrite``: it may replace files."""
    src, dst = Path(input_path), Path(output_path)
    if targets is None:
        targets = plan_outputs(src, dst, background.transparent, protected=_background_files(background))
    made = src.is_dir() and not dst.exists()
    if src.is_dir():
        try:
            dst.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PhotoError(f"cannot create output folder {dst}: {exc.strerror}") from None

    report = BatchReport()
    bar = None
    if progress and len(targets) > 1 and sys.stderr is not None and sys.stderr.isatty():  # (not into a log file)
        from tqdm import tqdm

        bar = tqdm(total=len(targets), unit="img", desc="photos", file=sys.stderr)  # (tqdm stops drawing on EIO itself)
    # While the bar is drawn, log lines go through tqdm.write so they do not break it.
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm() if bar is not None else nullcontext():
        try:
            for source, target in targets:
                try:
                    image, alpha = read_image(source, with_opacity=True)
                    result, person = cut_out(engine, image, background, compositor, alpha)
                    write_image_atomic(target, result, replace=overwrite)
                    if not person:
                        log.warning("%s: %s", source.name, NO_PERSON)
                    report.written.append(target)
                    log.debug("wrote %s (%dx%d)", target, result.shape[1], result.shape[0])
                except (MediaError, PhotoError) as exc:
                    if not src.is_dir():  # one picture: its error is the run's (a folder goes on)
                        raise
                    log.error("skipped %s: %s", source.name, exc)
                    report.failed.append((source, str(exc)))
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
            if not report.written:
                remove_if_made(dst, made)
    return report


def _background_files(background: Background) -> tuple[Path, ...]:
    path = getattr(background, "path", None)
    return (Path(path),) if path else ()


def run_photo_mode(settings: Settings) -> int:
    """The CLI's photo mode: prints each written path; exit 1 when some pictures of a batch failed."""
    background = build_background(settings, photo=True)
    if settings.output.endswith(("/", os.sep)) and not Path(settings.output).is_dir() and not Path(settings.image).is_dir():
        raise PhotoError(f"--output {settings.output}: that folder does not exist (create it, or give a file name)")
    targets = plan_outputs(Path(settings.image), Path(settings.output), background.transparent,
                           protected=_background_files(background), overwrite=settings.overwrite)  # before loading a model
    engine = build_engine(settings, photo=True)
    compositor = build_compositor(settings, engine, photo=True)
    report = run_photo(engine, settings.image, settings.output, background, compositor, targets=targets,
                       overwrite=settings.overwrite)
    for path in report.written:
        say(str(path), sys.stdout)
    if report.failed:
        say(f"{len(report.failed)} of {len(report.failed) + len(report.written)} pictures failed: "
            + "; ".join(f"{p.name}: {why}" for p, why in report.failed))
        return 1
    return 0
