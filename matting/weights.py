"""Model files: where they live, and their download on first use, checksummed.

Downloads stream into a temporary file in the destination folder and are
renamed into place only after their checksum (or a caller's validation)
passed, so an interrupted or corrupted download never leaves a file that looks
usable. Importing this module does not import torch (the selfie and ONNX
paths never need it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import DownloadError, ModelUnavailable
from .files import open_temp_beside

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
OFFLINE_ENV = "MODNET_OFFLINE"
MIRROR_ENV = "MODNET_WEIGHTS_MIRROR"
DEFAULT_MIRROR = "https://huggingface.co/DavG25/modnet-pretrained-models/resolve/main/models"


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
        raise ModelUnavailable(offline_message(known, dest, f"offline mode is on: --offline or {OFFLINE_ENV}=1"))
    if known.credit:
        log.info("Downloading %s (%s)", known.filename, known.credit)
    try:
        download(known.download_url(), dest, expected_blake2b=known.blake2b,
                 validate=validate, progress=progress, timeout=timeout)
    except DownloadError as exc:
        raise ModelUnavailable(offline_message(known, dest, str(exc))) from None
    return dest


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
    fd, tmp = open_temp_beside(dest)  # created with the user's umask, like any file they save
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
