"""Checkpoints: safe loading of MODNet state dicts (any accepted layout) into the network.

A ``.ckpt`` file is a pickle, and unpickling can run code, so every load goes
through ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Mapping

import torch

from .errors import WeightsError


def load_state_dict(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a MODNet state dict from any of the accepted layouts.

    Accepts the official checkpoints (a ``DataParallel`` state dict whose keys
    start with ``module.``), a plain state dict, or a dict holding one under
    ``state_dict``. Raises :class:`WeightsError` with a one-line reason.
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise WeightsError(f"checkpoint path is a folder, not a file: {path}")
    if path.stat().st_size == 0:
        raise WeightsError(f"checkpoint is an empty file: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise WeightsError(f"checkpoint is truncated or damaged: {path} ({exc})") from None
    except RuntimeError as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "zip" in text.lower() or "archive" in text.lower() or "stream" in text.lower():
            raise WeightsError(f"checkpoint is truncated or damaged: {path} ({text})") from None
        raise WeightsError(f"not a PyTorch checkpoint: {path}{_hint(path)}") from None
    except Exception:  # UnpicklingError, ValueError, ...: anything that is not a checkpoint
        raise WeightsError(f"not a PyTorch checkpoint (or one that would run code when loaded, which is refused): "
                           f"{path}{_hint(path)}") from None

    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"file is a PyTorch pickle but holds no state dict of tensors: {path}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def apply_state_dict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model`` strictly, with a readable error when it does not fit."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {', '.join(unexpected[:3])})")
        if mismatched:
            k = mismatched[0]
            parts.append(f"{len(mismatched)} shape mismatches (first: {k} is {tuple(state[k].shape)}, "
                         f"model expects {tuple(expected[k].shape)})")
        raise WeightsError(f"checkpoint does not fit MODNet: {source}: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def load_modnet(path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build MODNet, load ``path`` into it, move it to ``device`` and set eval mode."""
    from .modnet import MODNet

    model = MODNet(backbone_pretrained=False)
    apply_state_dict(model, load_state_dict(path, map_location="cpu"), str(path))
    return model.to(device).eval()


def _hint(path: Path) -> str:
    if path.suffix.lower() == ".tflite":
        return " (a TFLite model: for MediaPipe's selfie segmenter add --model selfie)"
    if path.suffix.lower() == ".onnx":
        return (" (an ONNX model, not a checkpoint: --export-onnx and --engine torch need MODNet's .ckpt; "
                "the selfie segmenter's .onnx needs --model selfie)")
    return ""
