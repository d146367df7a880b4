"""MediaPipe selfie segmentation: a tiny person segmenter for CPU-only machines.

Runs a ``.tflite`` model with ai-edge-litert (optional dependency) or an
``.onnx`` model with onnxruntime (:mod:`matting.runners`). The layout is read
from the model itself: input NHWC float32 RGB in [0, 1]; output either one
person-probability channel, or two logit channels (background, person) of
which the person's softmax is taken. The frame is resized to the model's input
as MediaPipe does (the landscape model is 144×256, i.e. 16:9 already).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .engine import MattingEngine
from .errors import WeightsError
from .runners import TfliteRunner, open_runner
from .weights import KnownWeights, ensure_weights

log = logging.getLogger(__name__)

SELFIE_LANDSCAPE = KnownWeights(
    "selfie_segmenter_landscape.tflite",
    None,  # "latest" has no stable published checksum: validated by loading instead
    url="https://storage.googleapis.com/mediapipe-models/image_segmenter/selfie_segmenter_landscape/"
        "float16/latest/selfie_segmenter_landscape.tflite",
    credit="MediaPipe selfie segmenter by Google, Apache License 2.0",
)
EXPECTED_LANDSCAPE = ((1, 144, 256, 3), (1, 144, 256, 1))


def check_layout(runner, path: Path) -> tuple[int, int, int]:
    """Validate an NHWC segmenter; returns (height, width, output channels)."""
    shape_in, shape_out = runner.input_shape, runner.output_shape
    ok = (runner.input_float and len(shape_in) == 4 and shape_in[3] == 3 and shape_in[1] > 0 and shape_in[2] > 0
          and len(shape_out) == 4 and shape_out[3] in (1, 2) and shape_out[1:3] == shape_in[1:3])
    if not ok:
        raise WeightsError(f"{path} is not a person-segmentation model this engine understands (expected input "
                           f"1×H×W×3 float and output 1×H×W×1 or ×2; it has {list(shape_in)} -> {list(shape_out)})")
    return shape_in[1], shape_in[2], shape_out[3]


class SelfieEngine(MattingEngine):
    """Person segmentation with the MediaPipe selfie models; alpha at the model's size."""

    name = "selfie"
    # A mask is harder-edged and noisier than a matte: smooth more over time
    # and refine its edges along the frame's own edges by default.
    default_smoothing = "ema"
    default_refine = True
    ema_still_weight = 0.2

    def __init__(self, weights: str | os.PathLike, threads: int | None = None):
        self.path = Path(weights)
        self.runner = open_runner(self.path, threads)
        self.height, self.width, self.channels = check_layout(self.runner, self.path)
        self.device = "cpu"
        self._blob = np.empty((1, self.height, self.width, 3), np.float32)

    def output_shape(self, frame_hw: Sequence[int]) -> tuple[int, int]:
        return self.height, self.width

    def infer(self, frame_bgr: np.ndarray) -> np.ndarray:
        small = cv2.resize(frame_bgr, (self.width, self.height), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        np.multiply(rgb, 1.0 / 255.0, out=self._blob[0], casting="unsafe")
        out = self.runner(self._blob)[0]
        if self.channels == 2:  # logits (background, person): softmax of the person channel
            diff = np.clip(out[:, :, 1] - out[:, :, 0], -60.0, 60.0)
            return (1.0 / (1.0 + np.exp(-diff))).astype(np.float32)
        return np.clip(out[:, :, 0], 0.0, 1.0).astype(np.float32)

    def describe(self) -> str:
        return f"selfie segmenter ({self.path.name}) on cpu"


def validate_selfie_file(path: Path) -> None:
    """Raise unless ``path`` loads and has the landscape model's shapes."""
    data = path.read_bytes()[:8]
    if data[4:8] != b"TFL3":
        raise ValueError("not a TFLite model file")
    try:
        runner = TfliteRunner(path, 1)
    except WeightsError as exc:
        if "ai-edge-litert" in str(exc):
            log.warning("ai-edge-litert is not installed: cannot check the downloaded model beyond its header")
            return
        raise ValueError(str(exc)) from None
    if (runner.input_shape, runner.output_shape) != EXPECTED_LANDSCAPE:
        raise ValueError(f"unexpected shapes {runner.input_shape} -> {runner.output_shape}, "
                         f"expected {EXPECTED_LANDSCAPE[0]} -> {EXPECTED_LANDSCAPE[1]}")


def ensure_selfie_weights(weights_dir: str | os.PathLike | None = None, offline: bool | None = None) -> Path:
    return ensure_weights(SELFIE_LANDSCAPE, weights_dir, offline=offline, validate=validate_selfie_file)
