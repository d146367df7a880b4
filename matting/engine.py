"""Matting engines: a BGR uint8 frame in, a float32 alpha in [0, 1] out.

Every engine (MODNet in PyTorch, MODNet in ONNX Runtime, the MediaPipe selfie
segmenter) follows :class:`MattingEngine`, so sources, smoothers, compositors
and sinks work with any of them.

Inference size rule
-------------------
MODNet needs both sides to be multiples of 32. Users choose the *short side*
of the network input (``--inference-size``, itself a multiple of 32). The frame
is scaled so its short side equals that value, and the long side is rounded to
the nearest multiple of 32 (minimum 32). The aspect ratio is kept to within
half a block of 32 px: a 1280×720 frame at 288 runs at 288×512, at 512 it runs
at 512×896. A person is never squashed into a square. The long side is at most
:data:`MAX_ASPECT` times the short side's value: a 4000×20 strip would otherwise
run at 512×102400 (tens of gigabytes); such a picture is scaled down until it
fits (its short side then below the chosen size, 32 px at least).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from typing import Sequence

import cv2
import numpy as np

log = logging.getLogger(__name__)

BLOCK = 32
#: Largest short side accepted: beyond it MODNet's cost (and memory) explode for no gain (photos use 512).
MAX_INFERENCE_SIZE = 2048
#: The network input's long side is at most this many times the short side's chosen value (a 4:1
#: panorama runs as it is; a thin strip is scaled down to fit: see the module docs).
MAX_ASPECT = 4


def round_to_block(value: float, block: int = BLOCK) -> int:
    """Nearest multiple of ``block``, at least ``block``."""
    return max(block, int(round(value / block)) * block)


def checked_inference_size(value: int) -> int:
    """Validate a user-given short side; round it to a multiple of 32 with a warning."""
    value = int(value)
    if value <= 0:
        raise ValueError(f"inference size must be positive, got {value}")
    if value > MAX_INFERENCE_SIZE:
        raise ValueError(f"inference size must be at most {MAX_INFERENCE_SIZE}, got {value}")
    rounded = round_to_block(value)
    if rounded != value:
        log.warning("inference size %d is not a multiple of 32; using %d", value, rounded)
    return rounded


def inference_shape(frame_hw: Sequence[int], short_side: int) -> tuple[int, int]:
    """(height, width) of the network input for a frame of ``frame_hw`` (see module docs)."""
    h, w = int(frame_hw[0]), int(frame_hw[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"frame size must be positive, got {w}x{h}")
    scale = min(short_side / min(h, w), MAX_ASPECT * short_side / max(h, w))
    return round_to_block(h * scale), round_to_block(w * scale)


def upsample_alpha(alpha: np.ndarray, frame_hw: Sequence[int]) -> np.ndarray:
    """Bilinear upsampling of an inference-size alpha to the frame size.

    OpenCV's bilinear resize uses pixel centres (the same convention as
    ``align_corners=False``), so an edge at inference size lands on the same
    place in the frame; no half-pixel shift.
    """
    h, w = int(frame_hw[0]), int(frame_hw[1])
    if alpha.shape[:2] == (h, w):
        return alpha.astype(np.float32, copy=False)
    out = cv2.resize(alpha.astype(np.float32, copy=False), (w, h), interpolation=cv2.INTER_LINEAR)
    np.clip(out, 0.0, 1.0, out=out)
    return out


#: Share of a matte's pixels that must be at least half opaque for it to hold a person at all
#: (a full-length figure far off in a wide picture still covers several times this).
MIN_PERSON_SHARE = 0.001
#: What a user is told about a picture whose matte holds nobody.
NO_PERSON = "no person found: the cut-out is empty (nothing in the picture looks like a person to the model)"


def finds_person(alpha: np.ndarray) -> bool:
    """False when ``alpha`` (float32 in [0, 1], any size, on the host) has (almost) nothing opaque."""
    return np.count_nonzero(alpha >= 0.5) >= MIN_PERSON_SHARE * alpha.size


def alpha_to_numpy(alpha) -> np.ndarray:
    """A float32 numpy alpha (h×w) from a numpy array or a torch tensor on any device (the
    device-resident path hands tensors around; host code that needs numpy calls this)."""
    if isinstance(alpha, np.ndarray):
        return alpha
    return alpha.detach().reshape(alpha.shape[-2:]).float().cpu().numpy()


def resize_for_inference(frame_bgr: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """Area-resample a frame to the network size (area avoids aliasing when shrinking)."""
    h, w = shape_hw
    if frame_bgr.shape[:2] == (h, w):
        return frame_bgr
    interp = cv2.INTER_AREA if (h < frame_bgr.shape[0]) else cv2.INTER_LINEAR
    return cv2.resize(frame_bgr, (w, h), interpolation=interp)


class MattingEngine(ABC):
    """Interface of every engine.

    ``infer`` takes a BGR uint8 frame of any size (H×W×3) and returns a float32
    alpha (h×w) in [0, 1] at the engine's inference size; use
    :func:`upsample_alpha` to bring it to the frame size.
    """

    name: str = "engine"
    device: str = "cpu"
    #: per-engine defaults for the temporal smoother and edge refinement
    default_smoothing: str = "ema"
    default_refine: bool = False
    ema_still_weight: float = 0.25
    #: True when ``infer`` may run from several threads at once (several inference workers)
    thread_safe: bool = False

    @abstractmethod
    def infer(self, frame_bgr: np.ndarray) -> np.ndarray:
        ...

    def output_shape(self, frame_hw: Sequence[int]) -> tuple[int, int]:
        """Shape of the alpha ``infer`` returns for a frame of this size."""
        raise NotImplementedError

    #: True when ``infer_timed(frame, on_device=True)`` returns the alpha as a tensor on ``device``
    device_resident: bool = False

    def infer_timed(self, frame_bgr: np.ndarray, on_device: bool = False) -> tuple[np.ndarray, float, float]:
        """``(alpha, preprocess_s, inference_s)``; engines that can split the two override this.
        ``on_device`` is a request only engines with :attr:`device_resident` honour."""
        start = time.perf_counter()
        alpha = self.infer(frame_bgr)
        return alpha, 0.0, time.perf_counter() - start

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return f"{self.name} on {self.device}"


def pick_device(requested: str = "auto") -> str:
    """'auto' picks CUDA, then Apple MPS, then CPU; anything else is validated and returned."""
    import torch

    requested = (requested or "auto").lower()
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but PyTorch sees no CUDA GPU")
    if requested == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("--device mps was requested but Apple MPS is not available")
    if requested not in {"cpu", "mps"} and not requested.startswith("cuda"):
        raise ValueError(f"unknown device {requested!r}: use auto, cpu, cuda, cuda:N or mps")
    return requested


def set_cpu_threads(threads: int | None) -> None:
    """Torch intra-op threads; ``None`` keeps torch's default (one per core)."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
