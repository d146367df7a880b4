"""Run a small .tflite or .onnx model file on the CPU: load it, feed one float input, return its outputs.

The runner is picked by the file's suffix: ``.tflite`` runs with ai-edge-litert
(an optional dependency), ``.onnx`` with onnxruntime. Both expose the same
small interface: ``input_shape``, ``output_shape`` (of the first output),
``input_float``, ``layout`` ("NHWC", "NCHW" or "" when the input is not an
image), ``output_names``, ``runner(x)`` for the first output and
``runner.run_all(x)`` for every output by name. Files that cannot be loaded
raise :class:`~matting.errors.WeightsError` with a one-line message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import WeightsError


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def image_layout(shape: tuple[int, ...]) -> str:
    """"NHWC" or "NCHW" for a 4-D image input with 1 or 3 channels; "" otherwise."""
    if len(shape) != 4:
        return ""
    if shape[3] in (1, 3) and shape[1] not in (1, 3):
        return "NHWC"
    if shape[1] in (1, 3) and shape[3] not in (1, 3):
        return "NCHW"
    return "NHWC" if shape[3] in (1, 3) else ""


class TfliteRunner:
    """A .tflite model with ai-edge-litert's interpreter (XNNPACK on the CPU)."""

    def __init__(self, path: Path, threads: int | None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise WeightsError("running .tflite models needs the optional package ai-edge-litert "
                               "(pip install ai-edge-litert), or use an .onnx version of the model") from None
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads or 2)
            self.interpreter.allocate_tensors()
        except Exception as exc:
            raise WeightsError(f"not a loadable TFLite model: {path} ({_first_line(exc)})") from None
        self._in = self.interpreter.get_input_details()
        self._out = self.interpreter.get_output_details()
        self.input_shape = tuple(int(d) for d in self._in[0]["shape"]) if self._in else ()
        self.output_shape = tuple(int(d) for d in self._out[0]["shape"]) if self._out else ()
        self.input_float = bool(self._in) and self._in[0]["dtype"] == np.float32
        self.output_names = tuple(str(d["name"]) for d in self._out)
        self.layout = image_layout(self.input_shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._in[0]["index"], x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out[0]["index"])

    def run_all(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every output, by name (copies: the interpreter reuses its buffers)."""
        self.interpreter.set_tensor(self._in[0]["index"], x)
        self.interpreter.invoke()
        return {str(d["name"]): self.interpreter.get_tensor(d["index"]).copy() for d in self._out}

    def close(self) -> None:
        self.interpreter = None


class OnnxRunner:
    """An .onnx model with onnxruntime's CPU provider."""

    def __init__(self, path: Path, threads: int | None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise WeightsError("running .onnx models needs onnxruntime (pip install onnxruntime), "
                               "or use a .tflite version of the model") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 1  # small models gain nothing from more threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise WeightsError(f"not a loadable ONNX model: {path} ({_first_line(exc)})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        self._in, self._out = inputs[0].name, outputs[0].name
        self.input_shape = tuple(d if isinstance(d, int) else -1 for d in inputs[0].shape)
        self.output_shape = tuple(d if isinstance(d, int) else -1 for d in outputs[0].shape)
        self.input_float = inputs[0].type == "tensor(float)" and len(inputs) == 1
        self.output_names = tuple(o.name for o in outputs)
        self.layout = image_layout(self.input_shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self._out], {self._in: x})[0]

    def run_all(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every output, by name."""
        return dict(zip(self.output_names, self.session.run(list(self.output_names), {self._in: x})))

    def close(self) -> None:
        self.session = None


def open_runner(path: Path, threads: int | None = None) -> TfliteRunner | OnnxRunner:
    """The runner for ``path`` by its suffix; WeightsError if missing, unsupported or unloadable."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        return TfliteRunner(path, threads)
    if suffix == ".onnx":
        return OnnxRunner(path, threads)
    raise WeightsError(f"unsupported model format {suffix or '(none)'}: use a .tflite or .onnx file ({path})")
