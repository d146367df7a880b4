"""Checkpoints: safe loading of MODNet state dicts and download on first use.

A ``.ckpt`` file is a pickle, and unpickling can run code, so every load goes
through ``torch.load(weights_only=True)``. Downloads stream into a temporary
file in the destination folder and are renamed into place only after their
checksum (or a caller's validation) passed, so an interrupted or corrupted
download never leaves a file that looks usable.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
OFFLINE_ENV = "MODNET_OFFLINE"
MIRROR_ENV = "MODNET_WEIGHTS_MIRROR"
DEFAULT_MIRROR = "https://huggingface.co/DavG25/modnet-pretrained-models/resolve/main/models"


class WeightsError(RuntimeError):
    """A checkpoint could not be found, fetched or loaded; the message is for the user."""


@dataclass(frozen=True)
class KnownWeights:
    filename: str
    blake2b: str | None  # 64-byte BLAKE2b hex digest; None when no stable checksum is published
    url: str | None = None  # full URL; None means "<mirror>/<filename>"
    credit: str = ""

    def download_url(self) -> str:
        if self.url:
            return self.url
        return f"{os.environ.get(MIRROR_ENV, DEFAULT_MIRROR).rstrip('/')}/{self.filename}"


_MODNET_CREDIT = ("MODNet by Ke et al. (AAAI 2022), https://github.com/ZHKKKe/MODNet, "
                  "released under the Apache License 2.0")

MODNET_WEBCAM = KnownWeights(
    "modnet_webcam_portrait_matting.ckpt",
    "19ec6baa9934f834739d496c6f5d119a4e6fe09f67d19342025d3e9199b694814bc89d4e866db1d11da5e1740eba72a2ff4116420c5c212bf886d330d526f603",
    credit=_MODNET_CREDIT,
)
MODNET_PHOTO = KnownWeights(
    "modnet_photographic_portrait_matting.ckpt",
    "db1f7ec96b370abebbd506e360ce9819380cb45bb99930f1e955dfcbe9e4035708a6190ebf292e0b8b740cefdc879bad9146ba8158baac0a702aadf5311a8cd6",
    credit=_MODNET_CREDIT,
)


def is_offline(offline: bool | None = None) -> bool:
    if offline is not None:
        return offline
    flag = os.environ.get(OFFLINE_ENV, "") or os.environ.get("HF_HUB_OFFLINE", "")
    return flag.strip().lower() in {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

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
        raise WeightsError(f"not a PyTorch checkpoint: {path} ({text})") from None
    except Exception as exc:  # UnpicklingError, ValueError, ...: anything that is not a checkpoint
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"not a PyTorch checkpoint (or one that needs unsafe unpickling): {path} ({text})") from None

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


# --------------------------------------------------------------------------
# Download on first use
# --------------------------------------------------------------------------

def offline_message(known: KnownWeights, dest: Path, reason: str) -> str:
    return (f"The model file {known.filename} is not in {dest.parent}{os.sep} and could not be downloaded "
            f"({reason}). Download it from {known.download_url()} and save it as {dest}, "
            f"or pass an existing file with --weights PATH.")


def ensure_weights(known: KnownWeights, weights_dir: str | os.PathLike | None = None,
                   offline: bool | None = None, progress: bool = True,
                   validate: Callable[[Path], None] | None = None, timeout: float = 30.0) -> Path:
    """Return the path of ``known`` in ``weights_dir``, downloading it if absent."""
    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    dest = folder / known.filename
    if dest.exists():
        return dest
    if is_offline(offline):
        raise WeightsError(offline_message(known, dest, f"offline mode is on: --offline or {OFFLINE_ENV}=1"))
    if known.credit:
        log.info("Downloading %s (%s)", known.filename, known.credit)
    try:
        download(known.download_url(), dest, expected_blake2b=known.blake2b,
                 validate=validate, progress=progress, timeout=timeout)
    except DownloadError as exc:
        raise WeightsError(offline_message(known, dest, str(exc))) from None
    return dest


class DownloadError(RuntimeError):
    pass


def blake2b_file(path: str | os.PathLike) -> str:
    digest = hashlib.blake2b(digest_size=64)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: str | os.PathLike, expected_blake2b: str | None = None,
             validate: Callable[[Path], None] | None = None, progress: bool = True,
             timeout: float = 30.0) -> Path:
    """Stream ``url`` to ``dest`` atomically; nothing is left behind on failure."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.blake2b(digest_size=64)
        request = urllib.request.Request(url, headers={"User-Agent": "modnet-live/1.0"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
                fd = -1
                total = int(response.headers.get("Content-Length") or 0) or None
                bar = _progress_bar(total, dest.name) if progress else None
                received = 0
                try:
                    while True:
                        chunk = response.read(1 << 16)
                        if not chunk:
                            break
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
                finally:
                    if bar is not None:
                        bar.close()
                if total is not None and received != total:
                    raise DownloadError(f"connection closed after {received} of {total} bytes from {url}")
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url}") from None
        except urllib.error.URLError as exc:
            raise DownloadError(f"cannot reach {url}: {exc.reason}") from None
        except (OSError, ValueError) as exc:  # reset connections, IncompleteRead, timeouts
            if isinstance(exc, DownloadError):
                raise
            raise DownloadError(f"download of {url} failed: {exc or type(exc).__name__}") from None
        if expected_blake2b is not None and digest.hexdigest() != expected_blake2b.lower():
            raise DownloadError(f"checksum mismatch for {url}: the file is not the published one")
        if validate is not None:
            try:
                validate(tmp)
            except Exception as exc:
                raise DownloadError(f"downloaded file from {url} is not usable: {exc}") from None
        os.replace(tmp, dest)
        log.info("Saved %s", dest)
        return dest
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp.exists():
            tmp.unlink()


def _progress_bar(total: int | None, name: str):
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is in requirements.txt; degrade to no bar rather than fail
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, leave=False)
