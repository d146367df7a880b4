"""Edge work on the alpha and the person: guided-filter upsampling and colour decontamination.

Frames are BGR uint8; alphas float32 in [0, 1].
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def guided_upsample(alpha_small: np.ndarray, frame: np.ndarray, radius: int = 2, eps: float = 1e-3) -> np.ndarray:
    """Fast guided filter (He & Sun 2015): upsample alpha along the full-res frame's edges.

    The linear coefficients are fitted at inference size against a downsampled
    gray guide, then upsampled bilinearly and applied to the full-resolution
    guide: O(N), and full-res work is two resizes and a multiply-add.
    """
    h, w = frame.shape[:2]
    sh, sw = alpha_small.shape
    guide_full = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32) * (1.0 / 255.0)
    guide = cv2.resize(guide_full, (sw, sh), interpolation=cv2.INTER_AREA)
    p = alpha_small.astype(np.float32, copy=False)
    ksize = (2 * radius + 1, 2 * radius + 1)
    mean_i = cv2.boxFilter(guide, -1, ksize)
    mean_p = cv2.boxFilter(p, -1, ksize)
    cov_ip = cv2.boxFilter(guide * p, -1, ksize) - mean_i * mean_p
    var_i = cv2.boxFilter(guide * guide, -1, ksize) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    mean_a = cv2.resize(cv2.boxFilter(a, -1, ksize), (w, h), interpolation=cv2.INTER_LINEAR)
    mean_b = cv2.resize(cv2.boxFilter(b, -1, ksize), (w, h), interpolation=cv2.INTER_LINEAR)
    out = cv2.multiply(mean_a, guide_full)
    cv2.add(out, mean_b, dst=out)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def estimate_foreground(frame: np.ndarray, alpha: np.ndarray, radii: Sequence[int] = (90, 6),
                        work_short_side: int = 360) -> np.ndarray:
    """Colour decontamination by blur-fusion (Forte & Pitie 2021), BGR uint8 in and out.

    Semi-transparent edge pixels are a mix of the person and the old room; this
    estimates the person's own colour so the room's tint does not travel to the
    new background. Large then small box radii (in 720p pixels): the first pass
    finds colours far from the edge, the second refines near it. The blurred
    colour estimates are smooth, so they are computed at ``work_short_side``
    and only the final correction runs at full resolution.
    """
    h, w = frame.shape[:2]
    scale = min(1.0, work_short_side / min(h, w))
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    image_small = cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32) * (1.0 / 255.0)
    a_small = cv2.resize(alpha.astype(np.float32, copy=False), (sw, sh), interpolation=cv2.INTER_AREA)[:, :, None]
    fg, bg = image_small, image_small
    blurred_fg = blurred_bg = image_small
    for r in radii:
        rs = max(1, round(r * min(h, w) / 720 * scale))
        k = (2 * rs + 1, 2 * rs + 1)
        blurred_a = cv2.boxFilter(a_small[:, :, 0], -1, k)[:, :, None]
        blurred_fg = cv2.boxFilter(fg * a_small, -1, k) / (blurred_a + 1e-5)
        blurred_bg = cv2.boxFilter(bg * (1 - a_small), -1, k) / ((1 - blurred_a) + 1e-5)
        fg = blurred_fg + a_small * (image_small - a_small * blurred_fg - (1 - a_small) * blurred_bg)
        np.clip(fg, 0.0, 1.0, out=fg)
        bg = blurred_bg
    if scale < 1.0:
        blurred_fg = cv2.resize(blurred_fg, (w, h), interpolation=cv2.INTER_LINEAR)
        blurred_bg = cv2.resize(blurred_bg, (w, h), interpolation=cv2.INTER_LINEAR)
    # Only semi-transparent pixels change: where alpha is 1 the formula gives the
    # frame itself, and where it is 0 the colour is never seen. Correct the edge band only.
    out = frame.copy()
    ys, xs = np.nonzero((alpha > 0.004) & (alpha < 0.996))
    if ys.size:
        a = alpha[ys, xs].astype(np.float32)[:, None]
        image = frame[ys, xs].astype(np.float32) * (1.0 / 255.0)
        bf, bb = blurred_fg[ys, xs], blurred_bg[ys, xs]
        fg = bf + a * (image - a * bf - (1 - a) * bb)
        out[ys, xs] = np.clip(fg * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out
