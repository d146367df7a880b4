"""MODNet as ONNX: export a checkpoint (the rewritten graph of ``fast_graph.py``), cached per checkpoint.

The export has one input ``input`` (N×3×H×W float32, normalised RGB) and one
output ``matte`` (N×1×H×W), with dynamic height and width (multiples of 32).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from .errors import WeightsError

log = logging.getLogger(__name__)

OPSET = 17
# Bumped whenever the exported graph changes, so cached exports in weights/ are redone.
GRAPH_VERSION = 2


def export_modnet_onnx(weights: str | os.PathLike, output: str | os.PathLike, sample_hw=(288, 512),
                       rewritten: bool = True) -> Path:
    """Export the checkpoint at ``weights`` to ``output`` (written atomically).

    The graph is :class:`matting.fast_graph.MattePass`: MODNet's matte with
    exact rewrites that run faster (see that module). ``rewritten=False``
    exports the network as upstream writes it (for comparisons).
    """
    import torch

    from .fast_graph import MattePass
    from .checkpoint import load_modnet

    output = Path(output)
    if output.parent and not output.parent.exists():
        raise WeightsError(f"cannot write {output}: folder {output.parent} does not exist")

    class MatteOnly(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x, True)[2]

    net = load_modnet(weights, device="cpu").eval()
    model = MattePass(net).eval() if rewritten else MatteOnly(net).eval()
    tmp = output.with_name(f".{output.name}.part")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy-exporter deprecation and instance-norm notes
            # The TorchScript exporter handles dynamic H×W through MODNet's
            # scale-factor interpolations without extra packages.
            torch.onnx.export(model, (torch.zeros(1, 3, *sample_hw),), str(tmp), input_names=["input"],
                              output_names=["matte"], opset_version=OPSET, dynamo=False,
                              dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                                            "matte": {0: "batch", 2: "height", 3: "width"}})
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("exported MODNet to %s", output)
    return output


def cached_export(weights: Path, cache_dir: str | os.PathLike | None = None) -> Path:
    """Export a checkpoint once into ``cache_dir`` (default weights/), keyed by its content hash.

    Nothing is written beside the user's checkpoint; a changed checkpoint gets a new export.
    """
    from .weights import WEIGHTS_DIR, blake2b_file

    folder = Path(cache_dir) if cache_dir is not None else WEIGHTS_DIR
    onnx_path = folder / f"{weights.stem}-{blake2b_file(weights)[:16]}-g{GRAPH_VERSION}.onnx"
    if not onnx_path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        log.info("exporting %s to ONNX once: %s", weights.name, onnx_path)
        export_modnet_onnx(weights, onnx_path)
    return onnx_path
