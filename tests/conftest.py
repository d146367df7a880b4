"""Shared fixtures. Tests that need ../shared (or $MODNET_SHARED) skip with a reason when it is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
#: The shared test data (reference vectors, real footage, small real models): beside the checkout,
#: or where MODNET_SHARED points.
SHARED = Path(os.environ.get("MODNET_SHARED") or ROOT.parent / "shared").expanduser()
REFERENCE_CKPT = SHARED / "reference" / "modnet_reference.ckpt"
VLOG = SHARED / "media" / "vlog_720p.mp4"
PORTRAIT = SHARED / "media" / "portrait_720p.jpg"
TWO_PEOPLE = SHARED / "media" / "two_people.jpg"
NIGHT_SKY = SHARED / "media" / "background_night_sky.jpg"
MODELS = SHARED / "models"


def pytest_terminal_summary(terminalreporter):
    """Say it loudly when the shared test data is missing: the tests that need it were skipped."""
    if not SHARED.is_dir():
        terminalreporter.write_line(f"the shared test data is not at {SHARED}: the tests that need it were skipped "
                                    f"(put it beside the checkout, or set MODNET_SHARED=/path/to/shared)",
                                    yellow=True, bold=True)


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the shared test data is not beside this checkout)")
    return path


@pytest.fixture(scope="session")
def reference_ckpt() -> Path:
    return need(REFERENCE_CKPT)


@pytest.fixture(scope="session")
def vlog_path() -> Path:
    return need(VLOG)


@pytest.fixture(scope="session")
def vlog_frames(vlog_path) -> list[np.ndarray]:
    """The first 24 frames of the vlog clip (BGR uint8, 1280x720)."""
    cap = cv2.VideoCapture(str(vlog_path))
    frames = []
    while len(frames) < 24:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


@pytest.fixture(scope="session")
def small_engine(reference_ckpt):
    """MODNet (reference weights) at a small inference size: quick on a 2-core CPU."""
    from matting.torch_engine import TorchModnetEngine

    return TorchModnetEngine(reference_ckpt, inference_size=128, device="cpu")


def textured_room(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A synthetic 'room': blue/green checkerboard plus noise (no red anywhere)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    checker = ((yy // 16 + xx // 16) % 2).astype(np.float32)
    room = np.zeros((h, w, 3), np.float32)
    room[..., 0] = 120 + 100 * checker
    room[..., 1] = 160 - 60 * checker
    room += rng.normal(0, 6, room.shape)
    room[..., 2] = 0
    return np.clip(room, 0, 255).astype(np.uint8)


def selfie_engine():
    """The small real segmenter (ONNX), for tests that need a true person matte."""
    from matting.selfie import SelfieEngine

    return SelfieEngine(need(MODELS / "selfie_segmentation.onnx"))


def face_detector():
    """MediaPipe's face detector and landmarks (ONNX conversions), as ID photos use them."""
    from matting.face import FaceDetector

    return FaceDetector(need(MODELS / "face_detection_short_range.onnx"), MODELS / "face_landmark.onnx")
