"""MODNet in ONNX Runtime: an engine that runs the export (``onnx_export.py``), size-specialised.

The engine picks TensorRT, then CUDA, then the CPU execution provider.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .engine import MattingEngine, checked_inference_size, inference_shape, resize_for_inference
from .errors import WeightsError
from .onnx_export import cached_export

log = logging.getLogger(__name__)

# Size-specialised sessions kept per engine: each has its own weights and buffers (the first
# one at 288x512 added 87 MiB of resident memory on the test machine).
MAX_SIZED_SESSIONS = 4


def providers_for(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = ["TensorrtExecutionProvider", "CUDAExecutionProvider"] if device.startswith("cuda") else []
    return [p for p in wanted if p in available] + ["CPUExecutionProvider"]


class OnnxModnetEngine(MattingEngine):
    """MODNet through onnxruntime. ``weights`` is an ``.onnx`` export or a ``.ckpt`` to export."""

    name = "modnet-onnx"
    thread_safe = True  # InferenceSession.run may be called from several threads at once

    def __init__(self, weights: str | os.PathLike, inference_size: int = 288, device: str = "cpu",
                 threads: int | None = None, cache_dir: str | os.PathLike | None = None):
        import onnxruntime as ort

        path = Path(weights)
        if not path.exists():
            raise WeightsError(f"model file not found: {path}")
        if path.suffix.lower() != ".onnx":
            path = cached_export(path, cache_dir)
        self.inference_size = checked_inference_size(inference_size)
        self._options = ort.SessionOptions()
        self._options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            self._options.intra_op_num_threads = int(threads)
        # Worker threads sleep between runs instead of spinning: a live run infers a few times a
        # second, and spinning would burn the cores the call app needs in between.
        self._options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._options.log_severity_level = 3
        self._providers = providers_for(device)
        try:
            self.session = ort.InferenceSession(str(path), self._options, providers=self._providers)
        except Exception as exc:
            raise WeightsError(f"not a loadable ONNX model: {path} ({str(exc).splitlines()[0][:200]})") from None
        self._check_signature(path)
        if self.fixed_shape is not None:
            log.info("%s takes only %dx%d input: frames are resized to that (--inference-size does not apply)",
                     path.name, self.fixed_shape[1], self.fixed_shape[0])
        dims = self.session.get_inputs()[0].shape
        # names of the batch, height and width dimensions when the export leaves them dynamic
        self._dynamic_dims = (dims[0], dims[2], dims[3]) if all(isinstance(dims[i], str) for i in (0, 2, 3)) \
            else None
        self.device = "cuda" if self.session.get_providers()[0] != "CPUExecutionProvider" else "cpu"
        self.path = path
        self._sized_sessions: dict[tuple[int, int], object] = {}
        self._sized_lock = threading.Lock()

    def session_for(self, height: int, width: int):
        """A session specialised to one input size (the export's dynamic dimensions fixed).

        With every shape known, onnxruntime proves that the parts of the
        rewritten graph (``matting.fast_graph``) line up and fuses their sums
        into the convolutions: 0.5-8% faster than the dynamic session here
        (``bench/engines.py``). Sizes change only when the camera does, so a few are kept.
        """
        if self._dynamic_dims is None:
            return self.session  # a fixed-size export, or unnamed dimensions: nothing to specialise
        key = (height, width)
        session = self._sized_sessions.get(key)  # the per-frame path: no lock once built
        if session is not None:
            return session
        import onnxruntime as ort

        with self._sized_lock:
            session = self._sized_sessions.get(key)
            if session is None:
                options = ort.SessionOptions()
                for name in ("graph_optimization_level", "intra_op_num_threads", "log_severity_level"):
                    setattr(options, name, getattr(self._options, name))
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                for name, value in zip(self._dynamic_dims, (1, height, width)):
                    options.add_free_dimension_override_by_name(name, value)
                try:
                    session = ort.InferenceSession(str(self.path), options, providers=self._providers)
                except Exception as exc:  # the dynamic session still works: slower, not broken
                    log.warning("could not specialise %s to %dx%d (%s); using the dynamic session",
                                self.path.name, height, width, str(exc).splitlines()[0][:200])
                    session = self.session
                if len(self._sized_sessions) >= MAX_SIZED_SESSIONS:
                    self._sized_sessions.pop(next(iter(self._sized_sessions)))
                self._sized_sessions[key] = session
        return session

    def _check_signature(self, path: Path) -> None:
        """Refuse what is not a MODNet export (one N×3×H×W float input, an N×1×H×W matte of the
        input's size last); note a fixed input size (an export without dynamic axes), which the
        engine then runs at."""
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        ok = (len(inputs) == 1 and len(inputs[0].shape) == 4 and inputs[0].shape[1] == 3
              and inputs[0].type == "tensor(float)" and len(outputs) >= 1 and len(outputs[-1].shape) == 4
              and outputs[-1].shape[1] == 1)
        fixed = list(inputs[0].shape[2:]) if ok else []
        self.fixed_shape = tuple(fixed) if all(isinstance(d, int) and d > 0 for d in fixed) and fixed else None
        if ok:  # a matte the size of its input: where both are fixed, the same sizes
            out = list(outputs[-1].shape[2:])
            ok = all(not isinstance(o, int) or not isinstance(i, int) or o == i for o, i in zip(out, fixed))
        if not ok:
            got = ", ".join(f"{i.name}{list(i.shape)}" for i in inputs) + " -> " + \
                ", ".join(f"{o.name}{list(o.shape)}" for o in outputs)
            raise WeightsError(f"{path} is not a MODNet ONNX model (expected input N×3×H×W float and an "
                               f"N×1×H×W matte of the input's size; it has {got})")
        self._input = inputs[0].name
        self._output = outputs[-1].name

    def output_shape(self, frame_hw: Sequence[int]) -> tuple[int, int]:
        if self.fixed_shape is not None:  # an export of one size takes only that (the frame is stretched to it)
            return self.fixed_shape
        return inference_shape(frame_hw, self.inference_size)

    def preprocess(self, frame_bgr: np.ndarray) -> np.ndarray:
        """BGR uint8 frame -> 1x3xhxw float32 RGB, normalised as (x/255 - 0.5)/0.5."""
        small = resize_for_inference(frame_bgr, self.output_shape(frame_bgr.shape))
        blob = np.empty((1, 3, *small.shape[:2]), np.float32)
        # Planar copy of each channel in RGB order (about 8x faster than cv2.dnn.blobFromImage here),
        # then (x - 127.5) / 127.5, which equals (x/255 - 0.5) / 0.5, in place.
        for rgb_index, plane in enumerate(reversed(cv2.split(small))):
            blob[0, rgb_index] = plane
        blob *= 1.0 / 127.5
        blob -= 1.0
        return blob

    def _run(self, blob: np.ndarray) -> np.ndarray:
        return self.session_for(*blob.shape[2:]).run([self._output], {self._input: blob})[0]

    def infer(self, frame_bgr: np.ndarray) -> np.ndarray:
        return self._run(self.preprocess(frame_bgr))[0, 0]

    def infer_timed(self, frame_bgr, on_device: bool = False):
        start = time.perf_counter()
        blob = self.preprocess(frame_bgr)
        mid = time.perf_counter()
        matte = self._run(blob)
        return matte[0, 0], mid - start, time.perf_counter() - mid
