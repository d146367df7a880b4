"""Temporal matte smoothing: motion-aware EMA, one-frame delay (OFD), and their chain.

All smoothers work on alphas at inference size (float32 h×w in [0, 1]) and
take the matching frame (BGR uint8, any size) as a motion guide. ``push``
returns ``(tag, alpha, frame)`` triples: the tag is whatever the caller
attached to the frame (the pipeline passes the frame packet), so a smoother
that delays its output (OFD) hands back the *older* frame with its corrected
alpha, and the compositor always pairs an alpha with its own frame.

``DeviceEMA`` and ``DeviceOFD`` do the same arithmetic on torch tensors on the
engine's device: on CUDA the matte goes from the model through the smoother
to the device compositor without a host round trip (tests hold each pair
together on a CPU). Their motion guide comes from the frame, which is on the
host anyway: the same gray image at alpha size, uploaded (a quarter of the
alpha's bytes), or made on the device by the engine that resized the frame
there (:mod:`matting.device_prep`, within a grey level of the host's). They take numpy alphas too (the first matte, a reused one
moved by motion compensation) and hand out float32 h×w tensors.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import cv2
import numpy as np

from .framememo import device_frames

SMOOTHING_CHOICES = ("none", "ema", "ofd", "ofd+ema")


def _guide(frame: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """Gray guide at alpha size, float32 0..255."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    if gray.shape[:2] != shape_hw:
        gray = cv2.resize(gray, (shape_hw[1], shape_hw[0]), interpolation=cv2.INTER_AREA)
    return gray.astype(np.float32)


Item = tuple  # (tag, alpha, frame)


class Smoother:
    """No smoothing: every alpha passes straight through.

    ``push(tag, alpha, frame)`` returns a list of ``(tag, alpha, frame)``
    ready for compositing (empty while a delaying smoother fills up);
    ``flush()`` returns what is still held at the end of a stream.
    """

    name = "none"
    delay_frames = 0

    def push(self, tag: Any, alpha: np.ndarray, frame: np.ndarray) -> list[Item]:
        return [(tag, alpha, frame)]

    def flush(self) -> list[Item]:
        return []

    def reset(self) -> None:
        pass


class MotionAwareEMA(Smoother):
    """Exponential moving average whose blend weight follows input motion, per pixel.

    Where the input is still, the new alpha gets weight ``still_weight`` (so
    noise averages over ~1/still_weight frames and stops flickering); where the
    luma changed by ``motion_full`` or more grey levels it gets weight 1, so
    moving edges follow the newest matte without ghosting.
    """

    name = "ema"

    def __init__(self, still_weight: float = 0.25, motion_low: float = 2.0, motion_full: float = 12.0):
        self.still_weight = still_weight
        self.motion_low = motion_low
        self.motion_full = motion_full
        self._alpha: np.ndarray | None = None
        self._guide: np.ndarray | None = None

    def reset(self) -> None:
        self._alpha = None
        self._guide = None

    def push(self, tag, alpha, frame):
        guide = _guide(frame, alpha.shape)
        if self._alpha is None or self._alpha.shape != alpha.shape:
            self._alpha, self._guide = alpha.astype(np.float32, copy=True), guide
            return [(tag, self._alpha.copy(), frame)]
        motion = cv2.absdiff(guide, self._guide)
        # A 3x3 max spreads motion to the pixels next to it: an edge that moves
        # one pixel must update on both sides of its old position.
        motion = cv2.dilate(motion, np.ones((3, 3), np.uint8))
        ramp = np.clip((motion - self.motion_low) / (self.motion_full - self.motion_low), 0.0, 1.0)
        weight = self.still_weight + (1.0 - self.still_weight) * ramp
        self._alpha += weight * (alpha - self._alpha)
        self._guide = guide
        return [(tag, self._alpha.copy(), frame)]


class OneFrameDelay(Smoother):
    """MODNet's OFD trick: fix pixels that flip for exactly one frame.

    With mattes at t-1, t, t+1: where the neighbours agree
    (|a(t-1) - a(t+1)| <= tau) but a(t) differs from both by more than tau, a(t)
    is replaced by their mean. The output for frame t leaves when frame t+1
    arrives: one frame of latency.
    """

    name = "ofd"
    delay_frames = 1

    def __init__(self, threshold: float = 0.1):
        self.threshold = threshold
        self._window: deque[Item] = deque(maxlen=3)

    def reset(self) -> None:
        self._window.clear()

    def push(self, tag, alpha, frame):
        alpha = self._prepare(alpha)
        out: list[Item] = []
        if self._window and self._window[-1][1].shape != alpha.shape:
            out = self.flush()  # resolution changed: neighbours are not comparable
        self._window.append((tag, alpha, frame))
        if len(self._window) == 1:
            return out
        if len(self._window) == 2:  # no past frame yet: the first one leaves as it is
            return out + [self._window[0]]
        (_, prev, _), (mid_tag, mid, mid_frame), (_, nxt, _) = self._window
        fixed = self._fix(prev, mid, nxt, self.threshold)
        self._window[1] = (mid_tag, fixed, mid_frame)
        return out + [(mid_tag, fixed, mid_frame)]

    def _prepare(self, alpha):
        return alpha

    @staticmethod
    def _fix(prev, mid, nxt, tau: float):
        flip = (np.abs(prev - nxt) <= tau) & (np.abs(mid - prev) > tau) & (np.abs(mid - nxt) > tau)
        return np.where(flip, 0.5 * (prev + nxt), mid).astype(np.float32)

    def flush(self):
        out = [self._window[-1]] if self._window else []
        self._window.clear()
        return out


class Chain(Smoother):
    """Smoothers applied in order (e.g. OFD, then EMA)."""

    def __init__(self, *stages: Smoother):
        self.stages = stages
        self.name = "+".join(s.name for s in stages)
        self.delay_frames = sum(s.delay_frames for s in stages)

    def reset(self) -> None:
        for s in self.stages:
            s.reset()

    def push(self, tag, alpha, frame):
        items = [(tag, alpha, frame)]
        for stage in self.stages:
            items = [out for item in items for out in stage.push(*item)]
        return items

    def flush(self):
        pending: list[Item] = []
        for stage in self.stages:
            pending = [out for item in pending for out in stage.push(*item)] + stage.flush()
        return pending


class _OnDevice:
    """Moves alphas and guides onto one torch device (pinned, non-blocking copies on CUDA)."""

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self._pin = self.device.type == "cuda"

    def alpha(self, alpha):
        torch = self.torch
        if isinstance(alpha, torch.Tensor):
            return alpha.to(self.device, torch.float32).reshape(alpha.shape[-2:])
        return self.upload(np.ascontiguousarray(alpha, dtype=np.float32))

    def upload(self, array: np.ndarray):
        tensor = self.torch.from_numpy(array)
        if self._pin:
            tensor = tensor.pin_memory()
        return tensor.to(self.device, non_blocking=self._pin)


class DeviceEMA(Smoother):
    """:class:`matting.temporal.MotionAwareEMA` on a torch device (same weights, same guide)."""

    name = "ema"

    def __init__(self, device: str, still_weight: float = 0.25, motion_low: float = 2.0,
                 motion_full: float = 12.0):
        self.on = _OnDevice(device)
        self.still_weight, self.motion_low, self.motion_full = still_weight, motion_low, motion_full
        self._alpha = None
        self._guide = None

    def reset(self) -> None:
        self._alpha = None
        self._guide = None

    def push(self, tag, alpha, frame):
        torch = self.on.torch
        alpha_t = self.on.alpha(alpha)
        h, w = alpha_t.shape
        # the guide the engine made on the device from this frame (matting.device_prep), if it did
        memo = device_frames.get(frame)
        guide = memo.get(("guide", h, w)) if memo is not None else None
        if guide is None:
            guide = self.on.upload(_guide(frame, (h, w)).astype(np.uint8))
        with torch.inference_mode():
            if self._alpha is None or self._alpha.shape != alpha_t.shape:
                self._alpha, self._guide = alpha_t.clone(), guide
                return [(tag, self._alpha.clone(), frame)]
            motion = (guide.float() - self._guide.float()).abs()
            # the 3x3 max of temporal.MotionAwareEMA (its border is ignored there too)
            motion = torch.nn.functional.max_pool2d(motion[None, None], 3, stride=1, padding=1)[0, 0]
            ramp = ((motion - self.motion_low) / (self.motion_full - self.motion_low)).clamp_(0.0, 1.0)
            weight = ramp.mul_(1.0 - self.still_weight).add_(self.still_weight)
            self._alpha.add_(weight * (alpha_t - self._alpha))
            self._guide = guide
            return [(tag, self._alpha.clone(), frame)]


class DeviceOFD(OneFrameDelay):
    """:class:`OneFrameDelay` on a torch device."""

    def __init__(self, device: str, threshold: float = 0.1):
        super().__init__(threshold)
        self.on = _OnDevice(device)

    def _prepare(self, alpha):
        return self.on.alpha(alpha)

    def _fix(self, prev, mid, nxt, tau: float):
        torch = self.on.torch
        with torch.inference_mode():
            flip = ((prev - nxt).abs() <= tau) & ((mid - prev).abs() > tau) & ((mid - nxt).abs() > tau)
            return torch.where(flip, 0.5 * (prev + nxt), mid)


def make_smoother(name: str, still_weight: float = 0.25, device: str | None = None) -> Smoother:
    """``still_weight``: the EMA's weight of a new alpha where the input is still (per engine).
    ``device``: smooth torch tensors on that device (``DeviceEMA``/``DeviceOFD``) instead of
    numpy arrays on the host."""
    name = (name or "none").lower()
    if device is not None:
        ema, ofd = (lambda: DeviceEMA(device, still_weight=still_weight)), (lambda: DeviceOFD(device))
    else:
        ema, ofd = (lambda: MotionAwareEMA(still_weight=still_weight)), OneFrameDelay
    if name == "none":
        return Smoother()
    if name == "ema":
        return ema()
    if name == "ofd":
        return ofd()
    if name == "ofd+ema":
        return Chain(ofd(), ema())
    raise ValueError(f"unknown smoothing {name!r}: use one of {', '.join(SMOOTHING_CHOICES)}")
