"""Shared set-up for every bench script: paths, the default checkpoint, and runs built like the CLI's.

Importing it puts the project root on ``sys.path``; engines and pipelines are
built through :mod:`app.build`, the same builder ``live.py`` uses, so a bench
figure is the figure of the command users run.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MODNET_SHARED") or ROOT.parent / "shared").expanduser()  # (as the tests find it)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.build import build_engine, build_pipeline  # noqa: E402
from app.cli import exit_code_for  # noqa: E402
from app.config import Settings  # noqa: E402
from realtime.sources import VideoSource  # noqa: E402

VLOG = SHARED / "media" / "vlog_720p.mp4"
SELFIE_TFLITE = SHARED / "models" / "selfie_segmentation_landscape.tflite"
WEBCAM_CKPT = ROOT / "weights" / "modnet_webcam_portrait_matting.ckpt"
REFERENCE_CKPT = SHARED / "reference" / "modnet_reference.ckpt"


def whole(text: str, least: int = 1, unit: str = "") -> int:
    """An argparse type: a whole number (of ``unit``) of at least ``least``."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number{unit and ' of ' + unit}, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    return whole(text)


def fail(message: str, code: int = 2) -> NoReturn:
    """End a benchmark as ``live.py`` ends on bad input: one line, exit code 2 (usage)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def iter_frames(path: str | Path, limit: int | None = None):
    """The frames of a video file, one at a time (BGR uint8), at most ``limit``: a benchmark's
    memory stays the same for a minute of 4K as for a second of 720p. A file that is missing or
    that OpenCV cannot read ends the benchmark with a message saying so."""
    import cv2

    if Path(path).is_dir():
        fail(f"{path} is a folder: give a video file")
    if not Path(path).is_file():
        fail(f"video not found: {path}")
    cap = cv2.VideoCapture(str(path))
    try:
        count = 0
        while limit is None or count < limit:
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            yield frame
        if count == 0 and limit != 0:
            fail(f"{path}: OpenCV reads no video frames from it")
    finally:
        cap.release()


def read_frames(path: str | Path, limit: int | None = None) -> list:
    """The frames of a video file (BGR uint8), at most ``limit``, all in memory (short clips only)."""
    return list(iter_frames(path, limit))


def default_weights(required: bool = True, flag: bool = True) -> Path | None:
    """The official webcam checkpoint if downloaded, else the shared reference checkpoint
    (``flag``: the benchmark takes ``--weights``, and the message says so)."""
    for candidate in (WEBCAM_CKPT, REFERENCE_CKPT):
        if candidate.exists():
            return candidate
    if required:
        fail(f"no MODNet checkpoint: neither {WEBCAM_CKPT} nor {REFERENCE_CKPT} (MODNET_SHARED names the shared "
             f"folder){'; or pass --weights PATH' if flag else ''}", 1)
    return None


def settings(**values) -> Settings:
    """Validated settings with ``live.py``'s defaults and no window (bench runs are headless)."""
    values.setdefault("window", False)
    return Settings(**values).validate()


@contextmanager
def user_errors():
    """The errors ``live.py`` reports in one line (a bad model file, a bad value, a source that
    cannot be opened) end a benchmark the same way: one line and ``live.py``'s exit code."""
    try:
        yield
    except Exception as exc:
        code = exit_code_for(exc)
        if code is None:
            raise
        fail(str(exc), code)


def engine_for(model: str = "modnet", weights: str | Path | None = None, photo: bool = False, **values):
    """An engine exactly as ``live.py --model MODEL --weights WEIGHTS`` (plus ``values``) builds it."""
    with user_errors():
        return build_engine(settings(model=model, weights=str(weights) if weights else None, **values), photo=photo)


def pipeline_for(clip: str | Path, **values):
    """``(pipeline, source)`` for a video file, as ``live.py --source CLIP ...`` would build it."""
    with user_errors():
        run = settings(source=str(clip), **values)
        source = VideoSource(str(clip), loop=run.loop, pace=not run.every_frame)
        source.open()
    try:
        first = source.read()
        if first is None:
            fail(f"{clip} has no frames")
        with user_errors():
            return build_pipeline(run, source, first, interactive=False), source
    except BaseException:
        source.close()
        raise
