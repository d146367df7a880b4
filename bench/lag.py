#!/usr/bin/env python3
"""Lag benchmark: how far a reused matte trails the person, without and with motion compensation.

    python bench/lag.py                       # vlog_720p.mp4, N = 3, 6, 12, selfie engine
    python bench/lag.py --clip in.mp4 --every 6 --model modnet --weights m.ckpt

The same engine on every frame is the reference. "Matte every N" is the
product's ``--matte-every N`` cadence (``realtime.inference.MatteCadence``):
every N-th frame gets a matte, and so does a frame of a new scene (a cut), the
count starting again from it; each frame in between reuses the newest matte,
as-is (without) or moved onto it by optical flow (with, ``matting.motion``: what
live mode does), and, as ``--every-frame`` conversions do, weighed with the next
matte moved back onto it (both sides; not across a cut, nor after the last matte).
``--strict``: exactly every N-th frame, cuts or not (how this benchmark
measured before the cadence knew cuts). Errors at inference
size: mean |Δα| in the edge band (pixels within 4 px of the reference's
outline) and mask mismatch (share of all pixels on the other side of 0.5);
the warp's time per frame (median wall clock; mean process CPU time, OpenCV's
own threads included); and the flicker (``matting.metrics``, shared/NOTES.md) of the mattes as shown,
every frame, without and with compensation (the reference on every frame has
its own flicker, printed first). The last two lines are
``lag_ratio_both_sides=<edge error both sides / without>`` and
``lag_ratio=<edge error with / without>`` (live) for the last N.

``--delay D`` shows the frames as live mode does, where the model takes time: a matte is
ready D frames after its own frame, so every frame (the inferred ones too) is cut with a
matte at least D frames old, as is (without) or moved onto it (with); as with live mode's one
inference thread, the next matte starts only once one is ready (so N ≥ D; N = D is live mode
uncapped), and a cut waits for it too. "mattes" counts those ready before the clip ends. The
last line is then ``lag_ratio`` alone ("both sides" is what conversions do: they wait).

The clip is read once, frame by frame, every N at once: memory does not grow
with its length (``--frames`` caps the time: the reference runs the engine on
every frame).
"""

from __future__ import annotations

import argparse
import time
from itertools import chain
from pathlib import Path

import cv2
import numpy as np

from common import SELFIE_TFLITE, VLOG, default_weights, engine_for, fail, iter_frames, positive, whole  # noqa: E402  (sets up the project's imports)
from matting.metrics import FlickerMeter  # noqa: E402
from matting.motion import DIS_PRESETS, FINEST_SCALE, FLOW_AREA, MotionCompensator, flow_size, scene_thumbnail  # noqa: E402
from realtime.capture import FramePacket  # noqa: E402
from realtime.inference import MatteCadence  # noqa: E402


#: Below this edge error of the stale matte nothing to speak of moved: the ratios are noted as noise.
SMALL_ERROR = 0.005


def edge_band(alpha: np.ndarray, radius: int = 4) -> np.ndarray:
    mask = (alpha > 0.5).astype(np.uint8)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask, kernel) != cv2.erode(mask, kernel)


def errors(alpha: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    band = edge_band(reference)
    edge = float(np.abs(alpha - reference)[band].mean()) if band.any() else 0.0
    mismatch = float(((alpha > 0.5) != (reference > 0.5)).mean())
    return edge, mismatch


def positive_every(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"N must be a whole number, got {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"N must be at least 2 (every frame its own matte leaves nothing to reuse), "
                                         f"got {value}")
    return value


def flow_area(text: str) -> int:
    """``WxH`` (the flow frame of a 16:9 clip; other shapes keep as many pixels) as a pixel count."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"the flow size is WIDTHxHEIGHT, such as 256x144; got {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"the flow size must be at least 16x16, got {text!r}")
    return width * height


def finest_scale(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the finest scale is a whole number, got {text!r}") from None
    if not 0 <= value <= 4:
        raise argparse.ArgumentTypeError(f"the finest scale is 0 (the flow frame itself) to 4, got {value}")
    return value


class Reuse:
    """``--matte-every N`` over a stream of frames: the cadence, the newest matte and its frame,
    and the errors and flicker of the mattes shown in between, as is and motion-compensated."""

    def __init__(self, every: int, strict: bool = False, delay: int = 0, **flow):
        self.every, self.delay = every, delay
        self.cadence = MatteCadence(every, new_scenes=not strict)
        self.compensator = MotionCompensator(**flow)  # (flow: flow_area, preset, finest_scale)
        self.key: tuple[int, np.ndarray, np.ndarray] | None = None  # (t, frame, its matte): the newest matte
        # the matte being made (``delay``; at most one): (t, frame, matte), ready from frame t + delay on
        self.pending: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.mattes = 0  # mattes shown (with --delay: made and ready before the clip ended)
        self.rows: dict[str, list[tuple[float, float]]] = {"without": [], "with": [], "both": []}
        self.meters = {"without": FlickerMeter(), "with": FlickerMeter(), "both": FlickerMeter()}
        self.held: list[tuple[int, np.ndarray, np.ndarray]] = []  # (t, frame, reference) waiting for the next matte
        self.warp_ms: list[float] = []
        self.warp_cpu_ms: list[float] = []  # process CPU time over the warp (OpenCV's own threads too)

    def push(self, t: int, frame: np.ndarray, reference: np.ndarray) -> None:
        """Frame ``t`` and the engine's own matte of it (the reference)."""
        if self.delay:
            self.push_delayed(t, frame, reference)
            return
        if self.cadence.due(FramePacket(t, frame, float(t)), float(t)):
            self.release_held((t, frame, reference, scene_thumbnail(frame)))
            self.key, self.mattes = (t, frame, reference), self.mattes + 1  # an inferred frame: no lag
            for meter in self.meters.values():
                meter.push(frame, reference)
            return
        self.held.append((t, frame, reference))
        self.compare(t, frame, reference)

    def compare(self, t: int, frame: np.ndarray, reference: np.ndarray) -> None:
        """The errors and flicker of frame ``t`` cut with the newest matte, as is and moved onto it."""
        _, key_frame, key_alpha = self.key
        self.rows["without"].append(errors(key_alpha, reference))
        start, cpu = time.perf_counter(), time.process_time()
        warped = self.compensator.warp(key_alpha, key_frame, frame)
        self.warp_ms.append((time.perf_counter() - start) * 1000)
        self.warp_cpu_ms.append((time.process_time() - cpu) * 1000)
        self.rows["with"].append(errors(warped, reference))
        self.meters["without"].push(frame, key_alpha)
        self.meters["with"].push(frame, warped)

    def push_delayed(self, t: int, frame: np.ndarray, reference: np.ndarray) -> None:
        """As live mode shows frame ``t``: with the newest matte that is ready by then, as is and
        moved onto it; none before the first. As live mode's one inference thread does, a matte
        is started only while none is being made (``delay`` frames each), on a frame the cadence
        wants: a cut gets its matte once the one in hand is done."""
        if self.pending and self.pending[0][0] + self.delay <= t:
            self.key, self.mattes = self.pending.pop(), self.mattes + 1
        if not self.pending and self.cadence.due(FramePacket(t, frame, float(t)), float(t)):
            self.pending.append((t, frame, reference))
        if self.key is None:
            return
        self.compare(t, frame, reference)

    def release_held(self, later: tuple | None) -> None:
        """The frames since the newest matte, with the next one (``later``; None: the clip ended)."""
        for t, frame, reference in self.held:
            both = self.compensator.between(frame, t, self.key, later)
            self.rows["both"].append(errors(both, reference))
            self.meters["both"].push(frame, both)
        self.held = []

    def result(self) -> dict:
        self.release_held(None)
        out = {name: tuple(float(np.mean(col)) for col in zip(*values)) if values else (float("nan"),) * 2
               for name, values in self.rows.items()}
        out["warp_ms"] = float(np.median(self.warp_ms)) if self.warp_ms else float("nan")
        out["warp_cpu_ms"] = float(np.mean(self.warp_cpu_ms)) if self.warp_cpu_ms else float("nan")
        out["flicker"] = {name: meter_value(meter) for name, meter in self.meters.items()}
        out["mattes"] = self.mattes
        return out


def meter_value(meter: FlickerMeter) -> float:
    try:
        return meter.value()
    except ValueError:  # no static pixels between any two frames (or a single frame)
        return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(VLOG))
    parser.add_argument("--every", type=positive_every, action="append", help="N (repeatable; default 3, 6, 12)")
    parser.add_argument("--model", default="selfie", choices=["selfie", "modnet"])
    parser.add_argument("--weights", help="model file (default: the shared selfie model, or MODNet's checkpoint)")
    parser.add_argument("--frames", type=positive, help="use only the first N frames")
    parser.add_argument("--strict", action="store_true", help="a matte on exactly every N-th frame, even after a cut")
    parser.add_argument("--delay", type=lambda text: whole(text, 0, "frames"), default=0, metavar="FRAMES",
                        help="each matte is ready this many frames after its own frame, as in live mode, where "
                             "the model takes that long (a 350-ms matte at 24 fps: 8); default 0")
    parser.add_argument("--flow-preset", choices=sorted(DIS_PRESETS), default="ultrafast",
                        help="DIS preset (live runs: ultrafast); slower ones show how far a better flow goes")
    parser.add_argument("--flow-size", type=flow_area, default=FLOW_AREA, metavar="WxH",
                        help="pixels of the flow frame, as WIDTHxHEIGHT (live runs: 256x144; never above the clip's)")
    parser.add_argument("--finest-scale", type=finest_scale, default=FINEST_SCALE,
                        help=f"DIS's finest pyramid level, 0 = the flow frame itself (live runs: {FINEST_SCALE}); it "
                             "replaces the preset's own, and DIS lowers it to what the flow frame's size allows")
    args = parser.parse_args()
    everies = args.every or [3, 6, 12]
    if args.delay and min(everies) < args.delay:
        fail(f"--every {min(everies)} with --delay {args.delay}: one inference thread makes a matte every "
             f"{args.delay} frames at most (--every {args.delay} is live mode uncapped); give N of "
             f"{args.delay} or more")
    weights = args.weights or (SELFIE_TFLITE if args.model == "selfie" else default_weights())
    frames = iter_frames(Path(args.clip), args.frames)
    first, second = next(frames), next(frames, None)
    if second is None:
        fail(f"{args.clip}: 1 frame; the benchmark needs at least two")
    engine = engine_for(args.model, weights)
    flow = dict(flow_area=args.flow_size, preset=args.flow_preset, finest_scale=args.finest_scale)
    runs = [Reuse(every, args.strict, args.delay, **flow) for every in everies]
    reference_flicker, count, alpha = FlickerMeter(), 0, None  # (alpha: the last reference)
    for t, frame in enumerate(chain([first, second], frames)):
        if frame.shape != first.shape:
            fail(f"{args.clip}: frame {t} is {frame.shape[1]}x{frame.shape[0]}, the first was "
                 f"{first.shape[1]}x{first.shape[0]}: one size per clip")
        alpha = engine.infer(frame)
        reference_flicker.push(frame, alpha)
        for run in runs:
            run.push(t, frame, alpha)
        count = t + 1
    print(f"{Path(args.clip).name}: {count} frames {first.shape[1]}x{first.shape[0]}, "
          f"reference = {engine.describe()} on every frame, alpha {alpha.shape[1]}x{alpha.shape[0]}, "
          f"its flicker {meter_value(reference_flicker):.4f}")
    compensator = runs[0].compensator
    width, height = flow_size(*first.shape[:2], compensator.flow_area)
    print(f"flow: DIS {compensator.preset}, {width}x{height}, finest scale {compensator._dis.getFinestScale()}")
    if args.delay:
        print(f"(each matte ready {args.delay} frames after its own frame, as live mode's are: every frame is cut "
              f"with the newest ready matte, as is or moved onto it; 'both' does not apply: conversions wait)")
    else:
        print("(with: the newest matte moved onto the frame, as live mode does; both: weighed with the next "
              "matte moved back, as --every-frame conversions do)")
    print(f"{'every N':>7s} {'mattes':>6s} {'edge |Δα| without':>18s} {'with':>8s} {'both':>8s} "
          f"{'mask mismatch without':>22s} {'with':>8s} {'both':>8s} {'ratio':>6s} {'both':>6s} {'warp ms':>8s} "
          f"{'cpu ms':>7s} {'flicker without':>16s} {'with':>7s} {'both':>7s}")
    ratio = both = float("nan")
    for run in runs:
        r = run.result()
        ratio = r["with"][0] / r["without"][0] if r["without"][0] else float("nan")
        both = r["both"][0] / r["without"][0] if r["without"][0] else float("nan")
        print(f"{run.every:7d} {r['mattes']:6d} {r['without'][0]:18.4f} {r['with'][0]:8.4f} {r['both'][0]:8.4f} "
              f"{r['without'][1]:22.4f} {r['with'][1]:8.4f} {r['both'][1]:8.4f} {ratio:6.2f} {both:6.2f} "
              f"{r['warp_ms']:8.2f} {r['warp_cpu_ms']:7.2f} {r['flicker']['without']:16.4f} "
              f"{r['flicker']['with']:7.4f} {r['flicker']['both']:7.4f}")
    if ratio != ratio and args.delay and r["mattes"] == 0:
        print(f"(no ratio: no matte was ready before the clip ended, {args.delay} frames after the first)")
    elif ratio != ratio:
        print("(no ratio: the reused mattes had no error to compare, e.g. no outline in the reference, "
              "or every frame got its own matte)")
    elif r["without"][0] < SMALL_ERROR:
        print(f"(the reused matte as is was off by less than {SMALL_ERROR} at the edges: hardly anything moved, "
              f"so these ratios are of noise)")
    if not args.delay:
        print(f"lag_ratio_both_sides={both:.2f}")
    print(f"lag_ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
