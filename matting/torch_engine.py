"""MODNet in eager PyTorch: float16 and channels-last on CUDA, float32 on a CPU (float64 for tests)."""

from __future__ import annotations

import os
import time
from typing import Sequence

import numpy as np

from .engine import MattingEngine, checked_inference_size, inference_shape, pick_device, resize_for_inference, \
    set_cpu_threads


class TorchModnetEngine(MattingEngine):
    """MODNet in eager PyTorch. float16 on CUDA, float32 elsewhere (float64 for tests)."""

    name = "modnet"
    device_resident = True

    def __init__(self, weights: str | os.PathLike, inference_size: int = 288, device: str = "auto",
                 dtype: str | None = None, threads: int | None = None, channels_last: bool | None = None):
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

    def output_shape(self, frame_hw: Sequence[int]) -> tuple[int, int]:
        return inference_shape(frame_hw, self.inference_size)

    def preprocess(self, frame_bgr: np.ndarray):
        """BGR uint8 frame -> normalised NCHW RGB tensor on the engine's device."""
        import torch

        small = resize_for_inference(frame_bgr, self.output_shape(frame_bgr.shape))
        tensor = torch.from_numpy(np.ascontiguousarray(small))
        if self.device != "cpu":
            tensor = tensor.pin_memory().to(self.device, non_blocking=True) if self.device.startswith("cuda") \
                else tensor.to(self.device)
        # BGR -> RGB, HWC -> CHW, then upstream's (x/255 - 0.5) / 0.5 in the model's dtype.
        tensor = tensor.flip(-1).permute(2, 0, 1).unsqueeze(0).to(self.torch_dtype)
        tensor = tensor.div_(255.0).sub_(0.5).div_(0.5)
        if self.channels_last:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def infer_tensor(self, frame_bgr: np.ndarray):
        """Alpha as a 1×1×h×w tensor on the engine's device (for on-device compositing)."""
        import torch

        with torch.inference_mode():
            _, _, matte = self.model(self.preprocess(frame_bgr), True)
        return matte

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
        with torch.inference_mode():
            _, _, matte = self.model(tensor, True)
            if on_device:
                alpha = matte[0, 0].float()
                if self.device.startswith("cuda"):
                    torch.cuda.synchronize(self.device)
            else:
                alpha = matte[0, 0].float().cpu().numpy()
        return alpha, mid - start, time.perf_counter() - mid
