#!/usr/bin/env python3
"""Lag benchmark: how far a reused matte trails the person, without and with motion compensation.

    python bench/lag.py                       # vlog_720p.mp4, N = 3, 6, 12, selfie engine
    python bench/lag.py --clip in.mp4 --every 6 --model modnet --weights m.ckpt

The same engine on every frame is the reference. "Matte every N" reuses the
matte of frame k = N*floor(t/N) for frames t..k+N-1, as-is (without) or moved
onto frame t by optical flow (with, ``matting.motion``). Errors at inference
size: mean |Δα| in the edge band (pixels within 4 px of the reference's
outline) and mask mismatch (share of all pixels on the other side of 0.5);
and the flicker (``matting.metrics``, shared/NOTES.md) of the mattes as shown,
every frame, without and with compensation (the reference on every frame has
its own flicker, printed first). The last line is
``lag_ratio=<edge error with / without>`` for the last N.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from common import SELFIE_TFLITE, VLOG, default_weights, engine_for, read_frames  # noqa: E402  (sets up the project's imports)
from matting.metrics import flicker  # noqa: E402
from matting.motion import MotionCompensator  # noqa: E402


def edge_band(alpha: np.ndarray, radius: int = 4) -> np.ndarray:
    mask = (alpha > 0.5).astype(np.uint8)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask, kernel) != cv2.erode(mask, kernel)


def errors(alpha: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    band = edge_band(reference)
    edge = float(np.abs(alpha - reference)[band].mean()) if band.any() else 0.0
    mismatch = float(((alpha > 0.5) != (reference > 0.5)).mean())
    return edge, mismatch


def lag(frames, reference, every: int, compensator: MotionCompensator) -> dict:
    rows = {"without": [], "with": []}
    shown = {"without": [], "with": []}
    warp_ms = []
    for t in range(len(frames)):
        k = every * (t // every)
        if k == t:  # an inferred frame: no lag either way
            shown["without"].append(reference[t])
            shown["with"].append(reference[t])
            continue
        rows["without"].append(errors(reference[k], reference[t]))
        start = time.perf_counter()
        warped = compensator.warp(reference[k], frames[k], frames[t])
        warp_ms.append((time.perf_counter() - start) * 1000)
        rows["with"].append(errors(warped, reference[t]))
        shown["without"].append(reference[k])
        shown["with"].append(warped)
    out = {name: tuple(float(np.mean(col)) for col in zip(*values)) for name, values in rows.items()}
    out["warp_ms"] = float(np.median(warp_ms))
    out["flicker"] = {name: flicker(frames, alphas) for name, alphas in shown.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(VLOG))
    parser.add_argument("--every", type=int, action="append", help="N (repeatable; default 3, 6, 12)")
    parser.add_argument("--model", default="selfie", choices=["selfie", "modnet"])
    parser.add_argument("--weights", help="model file (default: the shared selfie model, or MODNet's checkpoint)")
    parser.add_argument("--frames", type=int, help="use only the first N frames")
    args = parser.parse_args()
    weights = args.weights or (SELFIE_TFLITE if args.model == "selfie" else default_weights())
    engine = engine_for(args.model, weights)
    frames = read_frames(Path(args.clip), args.frames)
    reference = [engine.infer(f) for f in frames]
    compensator = MotionCompensator()
    print(f"{Path(args.clip).name}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}, "
          f"reference = {engine.describe()} on every frame, alpha {reference[0].shape[1]}x{reference[0].shape[0]}, "
          f"its flicker {flicker(frames, reference):.4f}")
    print(f"{'every N':>7s} {'edge |Δα| without':>18s} {'with':>8s} {'mask mismatch without':>22s} {'with':>8s} "
          f"{'ratio':>6s} {'warp ms':>8s} {'flicker without':>16s} {'with':>7s}")
    ratio = float("nan")
    for every in args.every or [3, 6, 12]:
        r = lag(frames, reference, every, compensator)
        ratio = r["with"][0] / r["without"][0] if r["without"][0] else float("nan")
        print(f"{every:7d} {r['without'][0]:18.4f} {r['with'][0]:8.4f} {r['without'][1]:22.4f} {r['with'][1]:8.4f} "
              f"{ratio:6.2f} {r['warp_ms']:8.2f} {r['flicker']['without']:16.4f} {r['flicker']['with']:7.4f}")
    print(f"lag_ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
