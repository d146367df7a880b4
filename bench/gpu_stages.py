#!/usr/bin/env python3
"""Where a 1080p frame's time goes on the device, stage by stage (median ms, each stage synchronised).

    python bench/gpu_stages.py --device cuda
    python bench/gpu_stages.py --device cpu --frames 4    # a smoke test

The stages are the live pipeline's own objects (built as ``live.py --every-frame
--bg blue --engine torch`` builds them): the engine's preprocessing (upload,
resize, normalise; on CUDA the resize runs on the device), the model, the
temporal smoother, the compositor (upload unless the engine's copy is there,
blend, download). Then the ways of moving a 1080p frame between host and device
that the compositor could use, side by side. Serialised stages add up to
more than the pipelined run costs (decoding, inference and compositing run
in different threads); the largest one bounds the pipeline's frame rate.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict


from common import VLOG, default_weights, pipeline_for, read_frames  # noqa: E402  (project imports)
from gpu_check import make_clip  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()
    import torch

    from matting.engine import resize_for_inference

    cuda = args.device.startswith("cuda")
    sync = (lambda: torch.cuda.synchronize()) if cuda else (lambda: None)
    clip = make_clip(args.frames)
    pipeline, source = pipeline_for(clip, weights=str(default_weights(flag=False)), device=args.device,
                                    every_frame=True, background="blue", inference_workers=1, engine="torch")
    source.close()
    engine, smoother, compositor = pipeline.engine, pipeline.smoother, pipeline.compositor
    background = pipeline.library.current()
    frames = read_frames(clip)
    print(f"{engine.describe()}; smoother {smoother.name}; compositor {type(compositor).__name__}; "
          f"{len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]} from {VLOG.name}", flush=True)
    times: dict[str, list[float]] = defaultdict(list)

    def timed(name, fn):
        sync()
        start = time.perf_counter()
        result = fn()
        sync()
        times[name].append((time.perf_counter() - start) * 1000)
        return result

    pinned_in = torch.empty(frames[0].shape, dtype=torch.uint8).pin_memory() if cuda else None
    pinned_out = torch.empty(frames[0].shape, dtype=torch.uint8).pin_memory() if cuda else None
    for index, frame in enumerate(frames * 2):  # the first pass warms up; only the second is kept
        if index == len(frames):
            times.clear()
        timed("resize to inference size (CPU)",
              lambda: resize_for_inference(frame, engine.output_shape(frame.shape)))
        tensor = timed("engine.preprocess (resize, upload, normalise)", lambda: engine.preprocess(frame))
        with torch.inference_mode():
            matte = timed("engine.matte (the model; a CUDA graph on CUDA)", lambda: engine.matte(tensor)[0, 0].float())
        if not pipeline.options.device_alpha:  # the host smoother takes numpy
            matte = matte.cpu().numpy()
        items = timed("smoother.push", lambda: smoother.push(index, matte, frame))
        if items:
            _, alpha, shown = items[-1]
            timed("compositor.composite (upload, blend, download)",
                  lambda: compositor.composite(shown, alpha, background, now=0.0))
        if not cuda:
            continue
        host = torch.from_numpy(frame)
        timed("  frame up: pin_memory() each frame", lambda: host.pin_memory().to(args.device, non_blocking=True))
        timed("  frame up: into a kept pinned buffer", lambda: pinned_in.copy_(host).to(args.device, non_blocking=True))
        on_device = timed("  frame up: pageable .to()", lambda: host.to(args.device))
        timed("  frame down: .cpu() (pageable)", lambda: on_device.cpu().numpy())
        timed("  frame down: into a kept pinned buffer",
              lambda: pinned_out.copy_(on_device, non_blocking=True))
        timed("  blend only (float32, on device)",
              lambda: (on_device.float() * 0.5 + 64.0).clamp_(0, 255).to(torch.uint8))
    print(f"\n{'stage':52s} {'p50 ms':>8s} {'p90 ms':>8s}")
    for name, values in times.items():
        values = sorted(values)
        print(f"{name:52s} {statistics.median(values):8.2f} {values[int(0.9 * (len(values) - 1))]:8.2f}")


if __name__ == "__main__":
    main()
