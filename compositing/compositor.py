"""The compositor used by live and photo mode: upsample the alpha, blend the person over a background.

Conventions: frames are BGR uint8 (H×W×3); alphas are float32 (H×W) in [0, 1].
``Compositor.composite`` blends ``I = α·F + (1−α)·B`` in float and rounds to the
nearest integer, where F is the frame (or its decontaminated foreground) and B
the background rendered at the frame's size. With ``fast_blend`` (live video) it
blends with 8-bit weights instead, within 1 grey level of the float blend; so does
any compositor while the same alpha and background picture come back (a still
scene), with ``(1−α)·B`` kept.
"""

from __future__ import annotations

import time
from typing import Callable

import cv2
import numpy as np

from matting.engine import alpha_to_numpy, upsample_alpha
from matting.motion import same_scene, thumbnail

from .backgrounds import Background
from .refine import estimate_foreground, guided_upsample


class Compositor:
    """Upsamples the alpha to the frame and blends the person over a background.

    ``refine`` uses the guided filter for upsampling (sharper, edge-following
    alphas from coarse masks); ``decontaminate`` estimates the foreground colour
    on edge pixels; ``fast_blend`` blends every frame with 8-bit weights (live video:
    about two thirds of the float blend's CPU, within 1 grey level, but on one core where
    the float blend takes two; photos blend in float). Buffers are reused between frames
    of the same size, and so is the upsampled alpha while the same alpha array comes back
    (a still scene reuses its matte: alphas are never changed in place once handed over)
    and, when refining along the frame's edges, the scene is the same up to sensor noise
    (:func:`matting.motion.same_scene`). Those buffers make a compositor
    one thread's: each pipeline (and each photo worker) has its own.
    """

    def __init__(self, refine: bool = False, decontaminate: bool = False, fast_blend: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        self.refine = refine
        self.decontaminate = decontaminate
        self.fast_blend = fast_blend
        self.clock = clock
        self._inv_alpha: np.ndarray | None = None
        self._inv_of: np.ndarray | None = None  # the alpha array _inv_alpha was computed from
        self._last_pair: tuple[np.ndarray, np.ndarray] | None = None  # (alpha, background) of the last blend
        # (alpha, background, α in 8 bits per channel, round((1−α)·B)): a still scene's fixed part
        self._fixed: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._product: np.ndarray | None = None  # round(α·F), reused buffer
        # (alpha, frame hw, the frame's thumbnail when refined, the full-size alpha, the alpha as numpy)
        self._upsampled: tuple[np.ndarray, tuple[int, int], np.ndarray | None, np.ndarray, np.ndarray] | None = None

    def full_alpha(self, alpha: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """float32 alpha at the frame's size from an alpha at any size (numpy, or a torch tensor
        from the device-resident path: it is brought to the host here, once per tensor)."""
        hw = frame.shape[:2]
        # refinement follows the frame's edges: reused only on the same scene
        thumb = thumbnail(frame, max(1, hw[1] // 8), max(1, hw[0] // 8), shared=True) if self.refine else None
        cached = self._upsampled
        if (cached is not None and cached[0] is alpha and cached[1] == hw
                and (thumb is None or same_scene(thumb, cached[2]))):
            return cached[3]
        host = alpha_to_numpy(alpha)
        if host.shape[:2] == hw:  # clipped here as upsampling clips (once per matte: it is cached)
            full = np.clip(host, 0.0, 1.0, dtype=np.float32)
        else:
            full = guided_upsample(host, frame) if self.refine else upsample_alpha(host, hw)
        self._upsampled = (alpha, hw, thumb, full, host)
        return full

    def release(self) -> None:
        """Drop what is kept for the next frame (one-off photos: a full-size alpha is big)."""
        self._upsampled = self._inv_of = self._inv_alpha = None
        self._last_pair = self._fixed = self._product = None

    def composite(self, frame: np.ndarray, alpha: np.ndarray, background: Background,
                  now: float | None = None, rgba: bool = False) -> np.ndarray:
        """BGR uint8 composite (BGRA when ``rgba`` and the background is transparent)."""
        if background.passthrough:
            return frame
        alpha_full = self.full_alpha(alpha, frame)
        foreground = estimate_foreground(frame, alpha_full) if self.decontaminate else frame
        if rgba and background.transparent:
            alpha8 = np.clip(alpha_full * 255.0 + 0.5, 0, 255).astype(np.uint8)
            return np.dstack([foreground, alpha8])
        # the matte as computed (smaller; the same array while it is reused): a blur averages it down anyway
        back = background.render(frame, self._upsampled[4], self.clock() if now is None else now)
        return self.blend(foreground, back, alpha_full)

    def blend(self, foreground: np.ndarray, back: np.ndarray, alpha_full: np.ndarray) -> np.ndarray:
        """round(α·F + (1−α)·B) per pixel (BGR uint8): in float; or with 8-bit weights, on every
        frame with ``fast_blend``, and by any compositor from the second frame that brings the
        same alpha and background arrays (neither is ever changed in place once handed over),
        with that fixed part kept: 2.0 instead of 5.4 ms of CPU per 720p frame here, most of what
        a still scene costs once its matte and blur are reused. (Backgrounds never change a
        picture they returned: a new picture is a new array.)"""
        pair = self._last_pair
        self._last_pair = (alpha_full, back)
        same = pair is not None and pair[0] is alpha_full and pair[1] is back
        if (same or self.fast_blend) and foreground.ndim == 3:
            return self._blend_fixed(foreground, back, alpha_full)
        if self._inv_alpha is None or self._inv_alpha.shape != alpha_full.shape:
            self._inv_alpha = np.empty_like(alpha_full)
        if self._inv_of is not alpha_full:  # the same alpha again (a still scene): 1 − α is ready
            np.subtract(1.0, alpha_full, out=self._inv_alpha)
            self._inv_of = alpha_full
        # blendLinear computes (F·w1 + B·w2) / (w1 + w2 + 1e-5) in float with
        # saturating round-to-nearest: with w1 + w2 = 1 that is the composite
        # to within 3e-3 of a grey level, in one SIMD pass and no temporaries.
        return cv2.blendLinear(foreground, back, alpha_full, self._inv_alpha)

    def _blend_fixed(self, foreground: np.ndarray, back: np.ndarray, alpha_full: np.ndarray) -> np.ndarray:
        """round(F·a/255) + round(B·(255−a)/255) with a = round(255·α): two saturating 8-bit SIMD
        passes per frame (and two more, with the weights, for a new alpha or background); a = 255
        gives F and a = 0 gives B exactly."""
        fixed = self._fixed
        if fixed is None or fixed[0] is not alpha_full or fixed[1] is not back:
            # rounded and saturated: α in [0, 1] as 0..255 (full_alpha clips; convertScaleAbs would
            # fold a negative value over, and a clip here would cost 1 ms a 720p frame)
            a8 = cv2.convertScaleAbs(alpha_full, alpha=255.0)
            channels = back.shape[2]
            weight = cv2.merge([a8] * channels)
            rest = cv2.multiply(back, cv2.bitwise_not(weight), scale=1 / 255.0)
            fixed = self._fixed = (alpha_full, back, weight, rest)
        if self._product is None or self._product.shape != foreground.shape:
            self._product = np.empty_like(foreground)
        cv2.multiply(foreground, fixed[2], self._product, scale=1 / 255.0)
        return cv2.add(self._product, fixed[3])
