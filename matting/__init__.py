"""Frame -> alpha: MODNet (PyTorch or ONNX Runtime) and the selfie segmenter, with temporal smoothing.

No threads, no windows; imports nothing else of the project. Frames are BGR
uint8 (H×W×3); alphas are float32 (h×w) in [0, 1] at the engine's size.
"""

from .engine import (NO_PERSON, MattingEngine, alpha_to_numpy, checked_inference_size, finds_person, inference_shape,
                     pick_device, upsample_alpha)
from .errors import DownloadError, ModelUnavailable, WeightsError
from .factory import MODELS, RUNTIMES, create_engine, default_inference_size, modnet_weights
from .temporal import SMOOTHING_CHOICES, Smoother, make_smoother

__all__ = ["MattingEngine", "alpha_to_numpy", "checked_inference_size", "inference_shape", "pick_device", "upsample_alpha",
           "NO_PERSON", "finds_person",
           "DownloadError", "ModelUnavailable", "WeightsError", "MODELS", "RUNTIMES", "create_engine", "default_inference_size",
           "modnet_weights", "SMOOTHING_CHOICES", "Smoother", "make_smoother"]
