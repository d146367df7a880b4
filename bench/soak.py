#!/usr/bin/env python3
"""Soak test: a long run on a looping video; resident memory and latency must not drift.

    python bench/soak.py --minutes 10            # the figures in the README
    python bench/soak.py --minutes 1 --check     # exits 1 if memory grew > 5% or latency drifted

Runs the live pipeline with the default settings for this machine (async mode,
EMA smoothing, blur background) on the clip, paced at its own frame rate and
looping, into a null sink. Every ``--every`` seconds it prints resident memory
(RSS), output fps and the latency percentiles of that window.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

from common import VLOG, default_weights, pipeline_for  # noqa: E402  (sets up the project's imports)


def rss_mib() -> float:
    """Current resident set size in MiB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def soak(video: Path, weights: str | None, model: str, minutes: float, every: float, inference_size: int | None,
         out=sys.stdout) -> dict:
    # live.py --source VIDEO --loop --no-window --mode async --duration ... (defaults otherwise: blur, EMA)
    pipeline, _ = pipeline_for(video, model=model, weights=weights, inference_size=inference_size, loop=True,
                               mode="async", duration=minutes * 60)
    runner = threading.Thread(target=pipeline.run, name="soak-pipeline")
    runner.start()
    rows = []
    start = time.monotonic()
    seen_outputs = 0
    print(f"{'t (s)':>7s} {'RSS MiB':>8s} {'out fps':>8s} {'lat p50':>8s} {'lat p95':>8s}", file=out, flush=True)
    while runner.is_alive():
        runner.join(every - ((time.monotonic() - start) % every))
        t = time.monotonic() - start
        stats = pipeline.stats
        latencies = list(stats.latency_ms)
        window = latencies[-max(1, stats.outputs - seen_outputs):] if stats.outputs > seen_outputs else []
        fps = (stats.outputs - seen_outputs) / every
        seen_outputs = stats.outputs
        row = {"t": t, "rss": rss_mib(), "fps": fps,
               "p50": float(np.median(window)) if window else float("nan"),
               "p95": float(np.percentile(window, 95)) if window else float("nan")}
        rows.append(row)
        print(f"{row['t']:7.0f} {row['rss']:8.1f} {row['fps']:8.2f} {row['p50']:8.0f} {row['p95']:8.0f}",
              file=out, flush=True)
    # the row written after the run ended covers a partial window: leave it out
    peak = max((r["fps"] for r in rows), default=0.0)
    full = [r for r in rows if r["fps"] >= 0.5 * peak] or rows
    baseline = next((r for r in full if r["t"] >= min(30.0, minutes * 30)), full[0])
    last = full[-1]
    # Latency drift: every window of the second half after the warm-up slower than the first half's
    # median p95; one window slowed by something else on the machine is not drift.
    steady = full[full.index(baseline):]
    half = max(1, len(steady) // 2)
    summary = {
        "rss_start": baseline["rss"], "rss_end": last["rss"],
        "rss_growth": (last["rss"] - baseline["rss"]) / baseline["rss"],
        "p95_start": float(np.median([r["p95"] for r in steady[:half]])),
        "p95_end": float(min(r["p95"] for r in steady[half:] or steady[-1:])),
        "fps_end": last["fps"], "rows": rows,
    }
    print(f"RSS {summary['rss_start']:.1f} MiB at {baseline['t']:.0f} s -> {summary['rss_end']:.1f} MiB at "
          f"{last['t']:.0f} s ({100 * summary['rss_growth']:+.1f}%); latency p95 {summary['p95_start']:.0f} -> "
          f"{summary['p95_end']:.0f} ms", file=out, flush=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(VLOG))
    parser.add_argument("--weights", help="model file (default: weights/ or the shared reference checkpoint)")
    parser.add_argument("--model", default="modnet", choices=["modnet", "selfie"])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between rows")
    parser.add_argument("--inference-size", type=int)
    parser.add_argument("--check", action="store_true", help="exit 1 on > 5%% memory growth or latency drift")
    args = parser.parse_args()
    weights = args.weights or (str(default_weights()) if args.model == "modnet" else None)
    summary = soak(Path(args.video), weights, args.model, args.minutes, args.every, args.inference_size)
    if args.check:
        ok = summary["rss_growth"] < 0.05 and summary["p95_end"] < summary["p95_start"] * 1.5 + 20
        print("soak check:", "ok" if ok else "FAILED")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
