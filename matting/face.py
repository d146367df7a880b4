"""Find faces in a picture: boxes and eyes from MediaPipe BlazeFace (short range), chin and forehead from Face Mesh.

The detector sees the picture letterboxed to a 128×128 square (as MediaPipe
does), decodes its 896 SSD anchors and merges overlapping boxes with weighted
non-maximum suppression; everything is mapped back to the picture's pixels.
When the landmark model is available, a square 1.5× the box, turned so the
eyes are level, is cut out at 192×192 and its 468 points give the chin
(point 152), the top of the forehead (point 10) and the eye centres.

Models (MediaPipe's own ``.tflite`` files, downloaded on first use and checked
against their BLAKE2b checksums; ``.onnx`` conversions work too):
https://storage.googleapis.com/mediapipe-assets/face_detection_short_range.tflite and
https://storage.googleapis.com/mediapipe-assets/face_landmark.tflite, Apache License 2.0.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import ModelUnavailable, WeightsError
from .runners import open_runner
from .weights import KnownWeights, ensure_weights

log = logging.getLogger(__name__)

_CREDIT = "MediaPipe BlazeFace / Face Mesh by Google, Apache License 2.0"
FACE_DETECTOR = KnownWeights(
    "face_detection_short_range.tflite",
    "ea288043b8be9ff4b3ffe4cb3b6a3b972edb192a35fbf36375ace00416500eda6c33eb4e51c2ecf1c999ef43795eff8c5475316a9ec508c90d8ef78ab4f37990",
    url="https://storage.googleapis.com/mediapipe-assets/face_detection_short_range.tflite",
    credit=_CREDIT,
)
FACE_LANDMARKS = KnownWeights(
    "face_landmark.tflite",
    "87e9f6062046ae160e621de2790df715804d708e758e888435e9ee12fdc5663c0ea9d8f281624f0dba41f29adec5a3a88149a423e685d2e7a2239d71dc2cd90c",
    url="https://storage.googleapis.com/mediapipe-assets/face_landmark.tflite",
    credit=_CREDIT,
)

DETECTOR_SIZE = 128
LANDMARK_SIZE = 192
ANCHOR_STRIDES = (8, 16, 16, 16)   # MediaPipe's SSD anchor options for the short-range model
NMS_IOU = 0.3                      # MediaPipe's min_suppression_threshold for face detection
ROI_SCALE = 1.5                    # face box -> landmark crop (MediaPipe's detection-to-ROI scale)
CHIN, FOREHEAD_TOP = 152, 10
SUBJECT_RIGHT_EYE = (33, 133)      # outer and inner corner; on the image's left in an unmirrored photo
SUBJECT_LEFT_EYE = (263, 362)
TILE_PARTS = (2, 3)                # no face in the whole picture: squares of 1/2, then 1/3 of its longer side
MIN_TILE = 16                      # ... of at least this many pixels
MAX_REFINE = 2                     # extra landmark passes for a tilted face ...
REFINE_DEGREES = 8.0               # ... while the mesh's eye line differs from the crop's by more than this


@dataclass(frozen=True)
class Face:
    """One face, in the picture's pixels."""

    box: tuple[float, float, float, float]   # x0, y0, x1, y1
    score: float                              # detector confidence in [0, 1]
    left_eye: tuple[float, float]             # eye on the image's left side
    right_eye: tuple[float, float]
    chin: tuple[float, float] | None          # landmark 152 when the landmark model ran, else None
    top: tuple[float, float] | None = None    # landmark 10 (top of the forehead), else None

    @property
    def eye_line_y(self) -> float:
        """Height of the eye line: the mean of the two eyes' y."""
        return (self.left_eye[1] + self.right_eye[1]) / 2.0

    @property
    def center_x(self) -> float:
        """The face's vertical axis: halfway between the eyes."""
        return (self.left_eye[0] + self.right_eye[0]) / 2.0

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def ssd_anchors(size: int = DETECTOR_SIZE, strides: tuple[int, ...] = ANCHOR_STRIDES) -> np.ndarray:
    """Anchor centres (N×2, normalised x, y) in MediaPipe's order; layers sharing a stride share a grid."""
    centres, i = [], 0
    while i < len(strides):
        stride, per_cell = strides[i], 0
        while i < len(strides) and strides[i] == stride:
            per_cell += 2  # aspect ratio 1 plus the interpolated scale, fixed anchor size
            i += 1
        n = math.ceil(size / stride)
        ys, xs = np.mgrid[0:n, 0:n]
        grid = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one x0,y0,x1,y1 box with each row of ``boxes``."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 threshold: float = NMS_IOU) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted NMS: each cluster's boxes and keypoints averaged by score; best first."""
    order = np.argsort(-scores, kind="stable")
    merged = []
    while order.size:
        overlap = iou(boxes[order[0]], boxes[order])
        cluster, order_next = order[overlap > threshold], order[overlap <= threshold]
        weights = scores[cluster][:, None]
        box = (boxes[cluster] * weights).sum(0) / weights.sum()
        kps = (keypoints[cluster] * weights[:, :, None]).sum(0) / weights.sum()
        merged.append((box, kps, float(scores[order[0]])))
        order = order_next
    return merged


def _mesh_eyes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eye centres (the subject's right, then left) from the mesh's eye corners."""
    return points[list(SUBJECT_RIGHT_EYE), :2].mean(0), points[list(SUBJECT_LEFT_EYE), :2].mean(0)


def _angle_between(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray) -> float:
    """Degrees between the lines a0->a1 and b0->b1."""
    turn = math.atan2(a1[1] - a0[1], a1[0] - a0[0]) - math.atan2(b1[1] - b0[1], b1[0] - b0[0])
    return abs(math.degrees(math.atan2(math.sin(turn), math.cos(turn))))


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -100.0, 100.0)))


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _blob(rgb: np.ndarray, layout: str, scale: float, offset: float) -> np.ndarray:
    x = rgb.astype(np.float32) * scale + offset
    if layout == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None])


def _check_image_model(runner, path: Path, size: int, what: str) -> None:
    shape = runner.input_shape
    hw = shape[1:3] if runner.layout == "NHWC" else shape[2:4]
    if not runner.input_float or not runner.layout or tuple(hw) != (size, size):
        raise WeightsError(f"{path} is not the {what} model (expected a float input of {size}×{size}×3, "
                           f"it has {list(shape)})")


class FaceDetector:
    """BlazeFace short range, optionally followed by the Face Mesh landmark model."""

    def __init__(self, detector_path: str | os.PathLike, landmark_path: str | os.PathLike | None = None,
                 threads: int = 1, min_score: float = 0.5):
        self.detector_path = Path(detector_path)
        self.min_score = float(min_score)
        self.detector = open_runner(self.detector_path, threads)
        _check_image_model(self.detector, self.detector_path, DETECTOR_SIZE, "BlazeFace face-detection")
        self._reg, self._cls = self._detector_outputs()
        self.anchors = ssd_anchors()
        self.landmark_path = Path(landmark_path) if landmark_path is not None else None
        self.landmarks = None
        if self.landmark_path is not None:
            self.landmarks = open_runner(self.landmark_path, threads)
            _check_image_model(self.landmarks, self.landmark_path, LANDMARK_SIZE, "Face Mesh landmark")

    def _detector_outputs(self) -> tuple[str, str]:
        names = self.detector.output_names
        if "regressors" in names and "classificators" in names:
            return "regressors", "classificators"
        raise WeightsError(f"{self.detector_path} is not the BlazeFace face-detection model "
                           f"(expected outputs 'regressors' and 'classificators', it has {list(names)})")

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """Every face with a score of at least ``min_score``, merged by NMS, best first.

        The detector sees the picture at 128 px, where a face under about a fifth of the picture
        is too small to find; when the whole picture shows none, overlapping squares of half and a
        third of its longer side are searched too (a person further back, two people side by side)."""
        image = _as_bgr(image_bgr)
        h, w = image.shape[:2]
        if h == 0 or w == 0:
            return []
        found = [self._candidates(image, 0, 0, w, h)]
        if not len(found[0][2]):
            for parts in TILE_PARTS:
                side = max(h, w) / parts
                if side < MIN_TILE:  # a tiny picture: nothing to find in squares this small
                    break
                for y0 in _starts(h, side):
                    for x0 in _starts(w, side):
                        found.append(self._candidates(image, x0, y0, min(w, round(side)), min(h, round(side))))
        boxes, keypoints, scores = (np.concatenate(part) for part in zip(*found))
        if not len(scores):
            return []
        return [self._face(image, box, kps, score) for box, kps, score in weighted_nms(boxes, keypoints, scores)]

    def _candidates(self, image: np.ndarray, x0: int, y0: int, w: int, h: int):
        """``(boxes, keypoints, scores)`` in picture pixels of the detections in the region
        ``image[y0:y0+h, x0:x0+w]``, letterboxed into the detector's square as MediaPipe does."""
        region = image[y0:y0 + h, x0:x0 + w]
        scale = DETECTOR_SIZE / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(region, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        ox, oy = (DETECTOR_SIZE - nw) // 2, (DETECTOR_SIZE - nh) // 2
        square = np.zeros((DETECTOR_SIZE, DETECTOR_SIZE, 3), np.uint8)  # black bars, as MediaPipe pads
        square[oy:oy + nh, ox:ox + nw] = small
        rgb = cv2.cvtColor(square, cv2.COLOR_BGR2RGB)
        out = self.detector.run_all(_blob(rgb, self.detector.layout, 1.0 / 127.5, -1.0))
        raw = out[self._reg].reshape(-1, 16)
        scores = _sigmoid(out[self._cls].reshape(-1).astype(np.float64))
        keep = scores >= self.min_score
        raw, anchors, scores = raw[keep].astype(np.float64) / DETECTOR_SIZE, self.anchors[keep], scores[keep]
        cx, cy = raw[:, 0] + anchors[:, 0], raw[:, 1] + anchors[:, 1]
        boxes = np.stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2, cx + raw[:, 2] / 2, cy + raw[:, 3] / 2], 1)
        keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        # normalised square coordinates -> picture pixels
        to_px = np.array([[DETECTOR_SIZE / (nw / w), DETECTOR_SIZE / (nh / h)]])
        off = np.array([[ox / (nw / w) - x0, oy / (nh / h) - y0]])
        boxes = (boxes.reshape(-1, 2, 2) * to_px - off).reshape(-1, 4)
        return boxes, keypoints * to_px - off, scores

    def _face(self, image: np.ndarray, box: np.ndarray, kps: np.ndarray, score: float) -> Face:
        eye_a, eye_b = kps[0], kps[1]  # the subject's right eye, then left eye
        chin = top = None
        if self.landmarks is not None:
            points = self._landmark_points(image, box, eye_a, eye_b)
            for _ in range(MAX_REFINE):  # a tilted face: the detector's eyes are rough, so turn the crop again
                if points is None or _angle_between(eye_a, eye_b, *_mesh_eyes(points)) < REFINE_DEGREES:
                    break
                eye_a, eye_b = _mesh_eyes(points)
                points = self._landmark_points(image, box, eye_a, eye_b)
            if points is not None:
                eye_a, eye_b = _mesh_eyes(points)
                chin = (float(points[CHIN, 0]), float(points[CHIN, 1]))
                top = (float(points[FOREHEAD_TOP, 0]), float(points[FOREHEAD_TOP, 1]))
        left, right = sorted([(float(eye_a[0]), float(eye_a[1])), (float(eye_b[0]), float(eye_b[1]))])
        return Face(box=tuple(float(v) for v in box), score=score, left_eye=left, right_eye=right,
                    chin=chin, top=top)

    def _landmark_points(self, image: np.ndarray, box: np.ndarray, eye_a: np.ndarray,
                         eye_b: np.ndarray) -> np.ndarray | None:
        """The 468 points (x, y in picture pixels, z) or None when the model sees no face there."""
        theta = math.atan2(eye_b[1] - eye_a[1], eye_b[0] - eye_a[0])  # turn the eye line level
        found = self._mesh(image, box, theta)
        if found is None or _sigmoid(found[0]) < 0.5 or found[1].shape[0] < 468:
            log.debug("landmark model sees no face in the box %s", np.round(box))
            return None
        return found[1]

    def upright_logits(self, image_bgr: np.ndarray, box) -> list[float] | None:
        """The landmark model's face-presence logit for the face in ``box`` seen turned by 0, 90, 180
        and 270 degrees anticlockwise (the highest: the turn that shows it upright; far apart: it is
        sure), or None without the landmark model."""
        if self.landmarks is None:
            return None
        found = [self._mesh(_as_bgr(image_bgr), np.asarray(box, np.float64), k * math.pi / 2) for k in range(4)]
        return None if None in found else [logit for logit, _ in found]

    def _mesh(self, image: np.ndarray, box: np.ndarray, theta: float) -> tuple[float, np.ndarray] | None:
        """(presence logit, the points in picture pixels) of the landmark model on the box's square,
        turned by ``theta`` (radians); None for a box too small to look at."""
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        side = ROI_SCALE * max(box[2] - box[0], box[3] - box[1])
        if side < 2:
            return None
        s = LANDMARK_SIZE / side
        cos, sin = math.cos(theta), math.sin(theta)
        linear = s * np.array([[cos, sin], [-sin, cos]])
        to_crop = np.hstack([linear, (LANDMARK_SIZE / 2 - linear @ centre)[:, None]])
        source, matrix = _shrink_region(image, centre, side, s, to_crop)
        crop = cv2.warpAffine(source, pixel_index_matrix(matrix), (LANDMARK_SIZE, LANDMARK_SIZE),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        out = self.landmarks.run_all(_blob(rgb, self.landmarks.layout, 1.0 / 255.0, 0.0))
        arrays = sorted(out.values(), key=lambda a: a.size)
        presence, mesh = float(arrays[0].reshape(-1)[0]), arrays[-1].reshape(-1, 3).astype(np.float64)
        inverse = cv2.invertAffineTransform(to_crop)
        mesh[:, :2] = mesh[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        return presence, mesh

    def close(self) -> None:
        for runner in (self.detector, self.landmarks):
            if runner is not None:
                runner.close()
        self.landmarks = None

    def describe(self) -> str:
        marks = f" + {self.landmark_path.name}" if self.landmarks is not None and self.landmark_path else ""
        return f"face detector {self.detector_path.name}{marks}"


def _starts(length: int, side: float) -> list[int]:
    """Where squares of ``side`` start along ``length`` so that they overlap by half and cover it."""
    if side >= length:
        return [0]
    count = int(np.ceil((length - side) / (side / 2))) + 1
    return sorted({round(v) for v in np.linspace(0, length - side, count)})


def pixel_index_matrix(matrix: np.ndarray) -> np.ndarray:
    """An affine map in continuous coordinates (pixel i spans [i, i + 1), as the models' outputs are)
    rewritten for OpenCV's warps, whose coordinates put a pixel's centre at an integer."""
    out = np.array(matrix, np.float64)
    out[:, 2] += 0.5 * out[:, :2].sum(axis=1) - 0.5
    return out


def _shrink_region(image: np.ndarray, centre: np.ndarray, side: float, s: float,
                   matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For big reductions, cut the crop's region out and area-downscale it first, so the final
    bilinear warp does not alias; returns the source to warp and the matrix adjusted to it."""
    if s >= 0.5:
        return image, matrix
    h, w = image.shape[:2]
    reach = side * 0.75  # half the diagonal of the turned square, and a little more
    x0, y0 = max(0, int(centre[0] - reach)), max(0, int(centre[1] - reach))
    x1, y1 = min(w, int(math.ceil(centre[0] + reach))), min(h, int(math.ceil(centre[1] + reach)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image, matrix
    k = min(1.0, 1.5 * s)
    nw, nh = max(1, round((x1 - x0) * k)), max(1, round((y1 - y0) * k))
    region = cv2.resize(image[y0:y1, x0:x1], (nw, nh), interpolation=cv2.INTER_AREA)
    kx, ky = nw / (x1 - x0), nh / (y1 - y0)
    # region pixel u = (x - x0) * kx  ->  x = u / kx + x0
    to_image = np.array([[1 / kx, 0, x0], [0, 1 / ky, y0], [0, 0, 1]])
    return region, matrix @ to_image


# ---------------------------------------------------------------------------- files


def validate_tflite(path: Path) -> None:
    """A downloaded file must at least be a TFLite flatbuffer (the checksum does the rest)."""
    if path.read_bytes()[4:8] != b"TFL3":
        raise ValueError("not a TFLite model file")


def _user_file(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise WeightsError(f"face model file not found: {p}")
    if not p.is_file():
        raise WeightsError(f"the face model must be a .tflite or .onnx file, {p} is a folder")
    if p.suffix.lower() not in (".tflite", ".onnx"):
        raise WeightsError(f"unsupported face model format {p.suffix or '(none)'}: use a .tflite or .onnx file ({p})")
    return p


def _landmarks_beside(detector: Path) -> Path | None:
    suffixes = [detector.suffix.lower()] + [s for s in (".onnx", ".tflite") if s != detector.suffix.lower()]
    for suffix in suffixes:
        candidate = detector.with_name(f"face_landmark{suffix}")
        if candidate.is_file():
            return candidate
    return None


def _default_landmarks(weights_dir, offline) -> Path | None:
    try:
        return ensure_weights(FACE_LANDMARKS, weights_dir, offline=offline, validate=validate_tflite)
    except ModelUnavailable as exc:
        log.warning("Face landmarks unavailable, so the chin is taken from the face box (less exact) and a "
                    "picture turned on its side is not told: %s",
                    str(exc).replace("or pass an existing file with --weights PATH",
                                     "or put it beside the detector given with --face-weights"))
        return None


def create_face_detector(face_weights: str | None = None, weights_dir: str | os.PathLike | None = None,
                         offline: bool | None = None, threads: int = 1) -> FaceDetector:
    """The face detector, with landmarks when available. ``face_weights``: a local detector file
    (.tflite or .onnx), with ``face_landmark.onnx``/``.tflite`` beside it used when present;
    otherwise MediaPipe's files are downloaded on first use into ``weights_dir``."""
    if face_weights:
        detector = _user_file(face_weights)
        landmarks = _landmarks_beside(detector) or _default_landmarks(weights_dir, offline)
    else:
        try:
            detector = ensure_weights(FACE_DETECTOR, weights_dir, offline=offline, validate=validate_tflite)
        except ModelUnavailable as exc:
            raise ModelUnavailable(str(exc).replace("--weights PATH", "--face-weights PATH")) from None
        landmarks = _default_landmarks(weights_dir, offline)
    return FaceDetector(detector, landmarks, threads=threads)
