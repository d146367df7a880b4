#!/usr/bin/env python3
"""MODNet inference alone, engine against engine, on this machine.

    python bench/engines.py                 # 288x512 and 512x896, 1 and 2 threads
    python bench/engines.py --rounds 10

Rows: eager PyTorch (float32), ONNX Runtime on the plain export (the network as
upstream writes it), ONNX Runtime on this project's rewritten export
(``matting.fast_graph``) with dynamic shapes, and the same with the session
specialised to the input size (what ``OnnxModnetEngine`` runs). Rounds are
interleaved (one call of each engine per round) so drift hits all rows alike;
the table shows median and best ms and the speedup of the median over eager
PyTorch. The input is random: MODNet's cost does not depend on the content.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from common import default_weights  # noqa: E402  (sets up the project's imports)
from matting.checkpoint import load_modnet  # noqa: E402
from matting.onnx_export import export_modnet_onnx  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="MODNet checkpoint (default: weights/ or the shared one)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--sizes", default="288x512,512x896", help="comma-separated HxW, multiples of 32")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    args = parser.parse_args()
    import onnxruntime as ort
    import torch

    weights = Path(args.weights) if args.weights else default_weights()
    net = load_modnet(weights, device="cpu").eval()
    print(f"machine: {os.cpu_count()} CPU cores; torch {torch.__version__}, onnxruntime {ort.__version__}; "
          f"weights {weights.name}; {args.rounds} interleaved rounds")
    with tempfile.TemporaryDirectory() as tmp:
        plain = export_modnet_onnx(weights, Path(tmp) / "plain.onnx", rewritten=False)
        rewritten = export_modnet_onnx(weights, Path(tmp) / "rewritten.onnx")
        print(f"\n{'size':>8s} {'threads':>7s}  {'engine':44s} {'median ms':>9s} {'best ms':>8s} {'speedup':>8s}")
        for size in args.sizes.split(","):
            h, w = (int(v) for v in size.lower().split("x"))
            x = np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32)
            for threads in (int(t) for t in args.threads.split(",")):
                torch.set_num_threads(threads)
                runners = {"eager PyTorch float32": lambda: net(torch.from_numpy(x), True)[2]}
                for label, path, sized in [("ONNX Runtime, plain export", plain, False),
                                           ("ONNX Runtime, rewritten export", rewritten, False),
                                           ("ONNX Runtime, rewritten, size-specialised", rewritten, True)]:
                    options = ort.SessionOptions()
                    options.intra_op_num_threads = threads
                    if sized:
                        for name, value in (("batch", 1), ("height", h), ("width", w)):
                            options.add_free_dimension_override_by_name(name, value)
                    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                    runners[label] = (lambda s=session: s.run(None, {"input": x}))
                times = {k: [] for k in runners}
                with torch.inference_mode():
                    for run in runners.values():
                        run()  # warm-up
                    for _ in range(args.rounds):
                        for label, run in runners.items():
                            start = time.perf_counter()
                            run()
                            times[label].append((time.perf_counter() - start) * 1000)
                base = float(np.median(times["eager PyTorch float32"]))
                for label, values in times.items():
                    print(f"{h}x{w:<4d} {threads:7d}  {label:44s} {np.median(values):9.1f} {min(values):8.1f} "
                          f"{base / np.median(values):7.2f}x")


if __name__ == "__main__":
    main()
