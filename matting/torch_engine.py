"""MODNet in PyTorch: float16, channels-last and CUDA graphs on CUDA, eager float32 on a CPU (float64 for tests)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Sequence

import numpy as np

from .engine import MattingEngine, checked_inference_size, inference_shape, pick_device, resize_for_inference, \
    set_cpu_threads

log = logging.getLogger(__name__)


class TorchModnetEngine(MattingEngine):
    """MODNet in PyTorch. float16 on CUDA, float32 elsewhere (float64 for tests).

    On CUDA the model is replayed from a CUDA graph captured once per input
    shape (``cuda_graphs``: eager MODNet on a fast GPU is bound by its kernel
    launches, and a graph replays them all at once; 2.2 ms instead of 7.4–11.9
    ms at 288×512 float16 on an H200) and frames are resized on the device
    (``device_resize``, :mod:`matting.device_prep`). Both are for live video
    (the factory turns them off for photos). Both can be forced on a CPU for
    tests; graphs then fall back to eager with a warning.
    """

    name = "modnet"
    device_resident = True

    def __init__(self, weights: str | os.PathLike, inference_size: int = 288, device: str = "auto",
                 dtype: str | None = None, threads: int | None = None, channels_last: bool | None = None,
                 cuda_graphs: bool | None = None, device_resize: bool | None = None):
        import torch

        from .checkpoint import load_modnet

        self.device = pick_device(device)
        self.inference_size = checked_inference_size(inference_size)
        if dtype is None:
            dtype = "float16" if self.device.startswith("cuda") else "float32"
        self.torch_dtype = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64}[dtype]
        set_cpu_threads(threads)
        self.model = load_modnet(weights, device=self.device).to(self.torch_dtype)
        # channels-last lets cuDNN use its NHWC tensor-core kernels; on CPU it is slower here.
        self.channels_last = self.device.startswith("cuda") if channels_last is None else channels_last
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.weights = str(weights)
        on_cuda = self.device.startswith("cuda")
        self.cuda_graphs = on_cuda if cuda_graphs is None else cuda_graphs
        self._graphs: OrderedDict[tuple, tuple] = OrderedDict()  # (shape, strides) -> (graph, input, output)
        self._graph_lock = threading.Lock()  # one replay at a time: the graph's input and output are shared
        if on_cuda if device_resize is None else device_resize:
            from .device_prep import DeviceResizer

            self._resizer: DeviceResizer | None = DeviceResizer(self.device)
        else:
            self._resizer = None

    def describe(self) -> str:
        return f"{self.name} on {self.device}" + (", CUDA graphs" if self.cuda_graphs else "")

    def output_shape(self, frame_hw: Sequence[int]) -> tuple[int, int]:
        return inference_shape(frame_hw, self.inference_size)

    def preprocess(self, frame_bgr: np.ndarray):
        """BGR uint8 frame -> normalised NCHW RGB tensor on the engine's device."""
        import torch

        shape = self.output_shape(frame_bgr.shape)
        if self._resizer is not None:
            # resized on the device (3×h×w BGR float): BGR -> RGB (flip copies: the guide the
            # resizer left for the smoother is not touched by the in-place steps below)
            tensor = self._resizer.resize(frame_bgr, shape).flip(0).unsqueeze(0).to(self.torch_dtype)
        else:
            tensor = torch.from_numpy(np.ascontiguousarray(resize_for_inference(frame_bgr, shape)))
            if self.device != "cpu":
                tensor = tensor.pin_memory().to(self.device, non_blocking=True) if self.device.startswith("cuda") \
                    else tensor.to(self.device)
            # BGR -> RGB, HWC -> CHW
            tensor = tensor.flip(-1).permute(2, 0, 1).unsqueeze(0).to(self.torch_dtype)
        # upstream's (x/255 - 0.5) / 0.5 in the model's dtype
        tensor = tensor.div_(255.0).sub_(0.5).div_(0.5)
        if self.channels_last:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def matte(self, tensor):
        """The model's matte (1×1×h×w, a tensor of its own) for a preprocessed input."""
        import torch

        with torch.inference_mode():
            if not self.cuda_graphs:
                return self.model(tensor, True)[2]
            with self._graph_lock:
                key = (tuple(tensor.shape), tensor.stride())
                entry = self._graphs.get(key)
                if entry is None:
                    try:
                        entry = self._capture(key, tensor)
                    except Exception as exc:  # no CUDA, or an op that cannot be captured
                        log.warning("CUDA graphs unavailable (%s): MODNet runs eagerly",
                                    (str(exc).splitlines() or [type(exc).__name__])[0])
                        self.cuda_graphs = False
                        self._graphs.clear()  # never replayed again: let their memory go
                        return self.model(tensor, True)[2]
                graph, static_in, static_out = entry
                static_in.copy_(tensor)
                graph.replay()
                return static_out.clone()  # the next replay overwrites static_out

    def _capture(self, key: tuple, tensor):
        """A CUDA graph of the model for inputs like ``tensor`` (warmed up on a side stream first,
        as CUDA graphs need; errors from other threads' CUDA calls meanwhile stay theirs)."""
        import torch

        static_in = tensor.clone()
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(3):
                self.model(static_in, True)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            static_out = self.model(static_in, True)[2]
        while len(self._graphs) >= 4:  # a few input sizes at most (a source changing size)
            self._graphs.popitem(last=False)
        self._graphs[key] = (graph, static_in, static_out)
        return self._graphs[key]

    def infer_tensor(self, frame_bgr: np.ndarray):
        """Alpha as a 1×1×h×w tensor on the engine's device (for on-device compositing)."""
        return self.matte(self.preprocess(frame_bgr))

    def infer(self, frame_bgr: np.ndarray) -> np.ndarray:
        matte = self.infer_tensor(frame_bgr)
        return matte[0, 0].float().cpu().numpy()

    def infer_timed(self, frame_bgr, on_device: bool = False):
        """``on_device``: the alpha stays a float32 h×w tensor on the engine's device (the device
        smoother and compositor take it from there); the time is measured to its completion."""
        import torch

        start = time.perf_counter()
        tensor = self.preprocess(frame_bgr)
        mid = time.perf_counter()
        matte = self.matte(tensor)
        with torch.inference_mode():
            if on_device:
                alpha = matte[0, 0].float()
                if self.device.startswith("cuda"):
                    torch.cuda.synchronize(self.device)
            else:
                alpha = matte[0, 0].float().cpu().numpy()
        return alpha, mid - start, time.perf_counter() - mid
