"""The face detector (BlazeFace short range + Face Mesh landmarks) on real pictures, and its model files."""

import dataclasses
import http.server
import threading

import cv2
import numpy as np
import pytest

from conftest import MODELS, NIGHT_SKY, PORTRAIT, TWO_PEOPLE, need
from matting import ModelUnavailable, WeightsError
from matting.runners import image_layout, open_runner

pytest.importorskip("onnxruntime")

DET_ONNX, DET_TFLITE = MODELS / "face_detection_short_range.onnx", MODELS / "face_detection_short_range.tflite"
LM_ONNX, LM_TFLITE = MODELS / "face_landmark.onnx", MODELS / "face_landmark.tflite"


@pytest.fixture(scope="module")
def detector():
    from matting.face import FaceDetector

    return FaceDetector(need(DET_ONNX), need(LM_ONNX))


@pytest.fixture(scope="module")
def portrait():
    return cv2.imread(str(need(PORTRAIT)))


@pytest.fixture(scope="module")
def portrait_face(detector, portrait):
    (face,) = detector.detect(portrait)
    return face


def inside(point, box, margin=0.0):
    x0, y0, x1, y1 = box
    return x0 - margin <= point[0] <= x1 + margin and y0 - margin <= point[1] <= y1 + margin


def close(p, q, tol):
    return abs(p[0] - q[0]) <= tol and abs(p[1] - q[1]) <= tol


def test_one_face_on_the_portrait(portrait_face):
    face = portrait_face
    x0, y0, x1, y1 = face.box
    assert face.score > 0.8
    assert 150 < x1 - x0 < 220 and 150 < y1 - y0 < 220  # the head is about 175 px wide here
    assert inside(face.left_eye, face.box) and inside(face.right_eye, face.box)
    assert face.left_eye[0] < face.right_eye[0]
    assert abs(face.left_eye[1] - face.right_eye[1]) < 10  # an upright face
    assert face.chin is not None and face.top is not None
    assert face.chin[1] > face.eye_line_y + 0.4 * (y1 - y0)
    assert abs(face.chin[1] - y1) < 0.15 * (y1 - y0)  # at, or just below, the box bottom
    assert face.top[1] < face.eye_line_y and x0 < face.center_x < x1
    assert abs(face.center_x - face.chin[0]) < 15


def test_two_people(detector):
    faces = detector.detect(cv2.imread(str(need(TWO_PEOPLE))))
    assert len(faces) == 2
    assert faces[0].score >= faces[1].score
    left, right = sorted(faces, key=lambda f: f.center_x)
    assert left.box[2] < right.box[0]  # two separate faces, not one merged box
    assert all(f.chin is not None for f in faces)


def test_no_face(detector):
    assert detector.detect(np.full((480, 640, 3), (40, 160, 90), np.uint8)) == []
    assert detector.detect(cv2.imread(str(need(NIGHT_SKY)))) == []
    assert detector.detect(np.zeros((0, 10, 3), np.uint8)) == []


@pytest.mark.parametrize("hw", [(1, 1), (1, 2), (2, 3), (40, 3), (3, 40), (31, 31)])
def test_a_tiny_picture_has_no_face_and_no_error(detector, hw):
    """A picture a few pixels wide is searched whole only (its half and third squares would be
    empty): no face, and no error (a 1×1 picture used to divide by zero)."""
    assert detector.detect(np.full((*hw, 3), (50, 100, 200), np.uint8)) == []


def test_onnx_and_tflite_agree(portrait):
    pytest.importorskip("ai_edge_litert")
    from matting.face import FaceDetector

    a = FaceDetector(need(DET_ONNX), need(LM_ONNX)).detect(portrait)
    b = FaceDetector(need(DET_TFLITE), need(LM_TFLITE)).detect(portrait)
    assert len(a) == len(b) == 1
    assert np.abs(np.subtract(a[0].box, b[0].box)).max() < 2
    assert close(a[0].chin, b[0].chin, 2) and close(a[0].left_eye, b[0].left_eye, 2)
    assert abs(a[0].score - b[0].score) < 0.01


def test_without_landmarks_the_eyes_come_from_the_detector(portrait, portrait_face):
    from matting.face import FaceDetector

    (face,) = FaceDetector(need(DET_ONNX)).detect(portrait)
    assert face.chin is None and face.top is None
    assert face.box == pytest.approx(portrait_face.box, abs=1e-6)
    assert close(face.left_eye, portrait_face.left_eye, 8) and close(face.right_eye, portrait_face.right_eye, 8)


def test_landmark_model_seeing_no_face_keeps_the_detector_result(portrait, portrait_face):
    from matting.face import FaceDetector

    detector = FaceDetector(need(DET_ONNX), need(LM_ONNX))
    run_all = detector.landmarks.run_all

    def no_presence(x):
        out = run_all(x)
        small = min(out, key=lambda k: out[k].size)
        out[small] = np.full_like(out[small], -8.0)  # presence logit: no face
        return out

    detector.landmarks.run_all = no_presence
    (face,) = detector.detect(portrait)
    assert face.chin is None and face.top is None
    assert face.box == pytest.approx(portrait_face.box, abs=1e-6)


def test_mirrored_picture_gives_the_mirrored_face(detector, portrait, portrait_face):
    w = portrait.shape[1]
    (face,) = detector.detect(np.ascontiguousarray(portrait[:, ::-1]))
    x0, y0, x1, y1 = portrait_face.box
    assert np.abs(np.subtract(face.box, (w - x1, y0, w - x0, y1))).max() < 6
    assert close(face.left_eye, (w - portrait_face.right_eye[0], portrait_face.right_eye[1]), 5)
    assert close(face.chin, (w - portrait_face.chin[0], portrait_face.chin[1]), 5)


@pytest.mark.parametrize("crop", [(50, 500, 400, 1000), (0, 720, 500, 800), (60, 400, 520, 820)],
                         ids=["landscape", "tall", "square"])
def test_non_square_crops_find_the_face_where_it_is(detector, portrait, portrait_face, crop):
    y0, y1, x0, x1 = crop
    (face,) = detector.detect(np.ascontiguousarray(portrait[y0:y1, x0:x1]))
    shift = np.array([x0, y0, x0, y0], float)
    size = portrait_face.box[2] - portrait_face.box[0]
    # the box is the detector's, at another scale: a few per cent; the landmarks are tighter
    assert np.abs(np.add(face.box, shift) - portrait_face.box).max() < 0.08 * size
    assert close(np.add(face.left_eye, (x0, y0)), portrait_face.left_eye, 5)
    assert close(np.add(face.chin, (x0, y0)), portrait_face.chin, 6)


def test_padded_and_offset_picture(detector, portrait, portrait_face):
    top, left = 100, 250
    padded = cv2.copyMakeBorder(portrait, top, 30, left, 0, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    (face,) = detector.detect(padded)
    size = portrait_face.box[2] - portrait_face.box[0]
    assert np.abs(np.subtract(face.box, (left, top, left, top)) - portrait_face.box).max() < 0.15 * size
    assert close(np.subtract(face.left_eye, (left, top)), portrait_face.left_eye, 5)
    assert close(np.subtract(face.chin, (left, top)), portrait_face.chin, 6)


def test_tilted_face_landmarks_follow_the_tilt(detector, portrait, portrait_face):
    turn = cv2.getRotationMatrix2D((640, 360), 30, 1.0)
    (face,) = detector.detect(cv2.warpAffine(portrait, turn, (1280, 720)))
    expected_chin = turn @ np.array([*portrait_face.chin, 1.0])
    expected_eyes = sorted(tuple(turn @ np.array([*e, 1.0])) for e in (portrait_face.left_eye, portrait_face.right_eye))
    assert close(face.chin, expected_chin, 8)
    assert close(face.left_eye, expected_eyes[0], 8) and close(face.right_eye, expected_eyes[1], 8)


def test_sideways_face_is_found_roughly_or_not_at_all(detector, portrait, portrait_face):
    """BlazeFace short range is trained on upright faces: a 90° turn may be missed or located
    roughly (its eye keypoints are then unreliable); a found box must still cover the face."""
    h = portrait.shape[0]
    faces = detector.detect(cv2.rotate(portrait, cv2.ROTATE_90_CLOCKWISE))
    cx = (portrait_face.box[0] + portrait_face.box[2]) / 2
    cy = (portrait_face.box[1] + portrait_face.box[3]) / 2
    size = portrait_face.box[2] - portrait_face.box[0]
    assert len(faces) <= 1
    for face in faces:
        centre = ((face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2)
        assert close(centre, (h - 1 - cy, cx), 0.25 * size)


def test_runner_layouts_and_outputs():
    for path, layout in [(DET_ONNX, "NCHW"), (LM_ONNX, "NCHW"), (DET_TFLITE, "NHWC"), (LM_TFLITE, "NHWC")]:
        if path.suffix == ".tflite":
            pytest.importorskip("ai_edge_litert")
        runner = open_runner(need(path))
        assert runner.layout == layout
        shape = runner.input_shape
        out = runner.run_all(np.zeros(shape, np.float32))
        assert set(out) == set(runner.output_names) and len(out) == 2
    assert image_layout((1, 256, 256, 3)) == "NHWC" and image_layout((1, 3, -1, -1)) == "NCHW"
    assert image_layout((1, 10)) == ""


def test_wrong_model_files_are_refused(tmp_path):
    from matting.face import FaceDetector

    junk = tmp_path / "face.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="not a loadable ONNX model") as err:
        FaceDetector(junk)
    assert "\n" not in str(err.value)
    with pytest.raises(WeightsError, match="not the BlazeFace"):
        FaceDetector(need(LM_ONNX))  # the landmark model given as the detector
    with pytest.raises(WeightsError, match="not the Face Mesh"):
        FaceDetector(need(DET_ONNX), need(MODELS / "selfie_segmentation.onnx"))


# ---------------------------------------------------------------------------- files and downloads


def test_face_weights_missing_file(tmp_path):
    from matting.face import create_face_detector

    with pytest.raises(WeightsError, match="face model file not found") as err:
        create_face_detector(str(tmp_path / "nope.tflite"), weights_dir=tmp_path, offline=True)
    assert "\n" not in str(err.value)
    with pytest.raises(WeightsError, match="is a folder"):
        create_face_detector(str(tmp_path), weights_dir=tmp_path, offline=True)


def test_face_weights_takes_the_landmarks_beside_it(tmp_path):
    from matting.face import create_face_detector

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "my_detector.onnx").write_bytes(need(DET_ONNX).read_bytes())
    (folder / "face_landmark.onnx").write_bytes(need(LM_ONNX).read_bytes())
    detector = create_face_detector(str(folder / "my_detector.onnx"), weights_dir=tmp_path / "w", offline=True)
    assert detector.landmark_path == folder / "face_landmark.onnx"
    detector.close()


def test_face_weights_without_landmarks_offline_warns(tmp_path, caplog):
    from matting.face import create_face_detector

    (tmp_path / "det.onnx").write_bytes(need(DET_ONNX).read_bytes())
    detector = create_face_detector(str(tmp_path / "det.onnx"), weights_dir=tmp_path / "w", offline=True)
    assert detector.landmarks is None and "landmarks unavailable" in caplog.text


def test_offline_without_files(tmp_path, monkeypatch):
    from matting.face import create_face_detector

    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: pytest.fail("network used offline"))
    with pytest.raises(ModelUnavailable) as err:
        create_face_detector(weights_dir=tmp_path, offline=True)
    text = str(err.value)
    assert "face_detection_short_range.tflite" in text and "offline" in text and "\n" not in text
    assert list(tmp_path.iterdir()) == []


def test_default_files_in_the_weights_folder_are_used(tmp_path):
    pytest.importorskip("ai_edge_litert")
    from matting.face import create_face_detector

    for path in (DET_TFLITE, LM_TFLITE):
        (tmp_path / path.name).write_bytes(need(path).read_bytes())
    detector = create_face_detector(weights_dir=tmp_path, offline=True)
    assert detector.landmarks is not None


class _Serve(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def model_server():
    def handler(*args, **kwargs):
        return _Serve(*args, directory=str(MODELS), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_checks_the_published_checksum(model_server, tmp_path, monkeypatch):
    import matting.face as face

    need(DET_TFLITE)
    need(LM_TFLITE)
    # the genuine files, served locally: accepted
    for name in ("FACE_DETECTOR", "FACE_LANDMARKS"):
        known = getattr(face, name)
        monkeypatch.setattr(face, name, dataclasses.replace(known, url=f"{model_server}/{known.filename}"))
    good = tmp_path / "good"
    detector = face.create_face_detector(weights_dir=good, offline=False)
    assert detector.landmarks is not None
    assert sorted(p.name for p in good.iterdir()) == ["face_detection_short_range.tflite", "face_landmark.tflite"]
    # another model served under the detector's name: refused, nothing left behind
    wrong = dataclasses.replace(face.FACE_DETECTOR, url=f"{model_server}/selfie_segmentation.tflite")
    monkeypatch.setattr(face, "FACE_DETECTOR", wrong)
    bad = tmp_path / "bad"
    with pytest.raises(ModelUnavailable, match="checksum mismatch"):
        face.create_face_detector(weights_dir=bad, offline=False)
    assert not bad.exists() or list(bad.iterdir()) == []


def test_published_checksums_are_those_of_the_shared_files():
    from matting.face import FACE_DETECTOR, FACE_LANDMARKS
    from matting.weights import blake2b_file

    assert blake2b_file(need(DET_TFLITE)) == FACE_DETECTOR.blake2b
    assert blake2b_file(need(LM_TFLITE)) == FACE_LANDMARKS.blake2b
    assert FACE_DETECTOR.url.startswith("https://storage.googleapis.com/mediapipe-assets/")
    assert "Apache" in FACE_DETECTOR.credit


@pytest.mark.parametrize("scale", [0.6, 0.45, 0.3])
def test_a_small_face_is_found_where_it_is(detector, portrait, portrait_face, scale):
    """The detector sees the picture at 128 px: below about 3/4 of the portrait's size the face was
    not found at all ("no face found" for a person further back); squares of the picture are searched."""
    small = cv2.resize(portrait, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.zeros_like(portrait)
    y, x = (canvas.shape[0] - small.shape[0]) // 2, (canvas.shape[1] - small.shape[1]) // 2
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    (face,) = detector.detect(canvas)
    expected = [x + v * scale if i % 2 == 0 else y + v * scale for i, v in enumerate(portrait_face.box)]
    assert np.abs(np.array(face.box) - expected).max() < 0.15 * (expected[2] - expected[0])
    assert close(face.left_eye, (x + portrait_face.left_eye[0] * scale, y + portrait_face.left_eye[1] * scale),
                 0.1 * (expected[2] - expected[0]))


def test_two_smaller_people_are_two_faces(detector, portrait):
    """Two people side by side at half size: "no face found" before, not the two-faces refusal."""
    half = cv2.resize(portrait, (640, 360), interpolation=cv2.INTER_AREA)
    pair = np.vstack([np.zeros((180, 1280, 3), np.uint8), np.hstack([half, half]), np.zeros((180, 1280, 3), np.uint8)])
    left, right = sorted(detector.detect(pair), key=lambda f: f.center_x)
    assert left.center_x < 640 < right.center_x


@pytest.mark.parametrize("picture", [PORTRAIT, TWO_PEOPLE])
def test_a_turned_face_is_told_from_an_upright_one(detector, picture):
    """A picture turned by a quarter or half turn (or flipped upside down) reads as turned, with the
    turn that rights it; upright, mirrored and tilted by up to 45 degrees it reads as upright."""
    from PIL import Image

    from idphoto.errors import PictureTurned
    from idphoto.orientation import check_upright, upright_turn

    image = cv2.imread(str(need(picture)))
    tilted = [np.asarray(Image.fromarray(image).rotate(angle)) for angle in (20, -30, 45)]
    turned = {2: cv2.rotate(image, cv2.ROTATE_180), 1: cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE),
              3: cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)}
    for upright in [image, cv2.flip(image, 1), *tilted]:
        assert upright_turn(detector, upright, detector.detect(upright)) == 0
    for turn, picture_turned in [*turned.items(), (2, cv2.flip(image, 0))]:
        faces = detector.detect(picture_turned)
        assert upright_turn(detector, picture_turned, faces) == turn
        with pytest.raises(PictureTurned, match="upside down" if turn == 2 else "on its side"):
            check_upright(detector, picture_turned, faces)
        # righted as the message says, it is upright
        words = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}
        righted = cv2.rotate(picture_turned, words[turn])
        assert upright_turn(detector, righted, detector.detect(righted)) == 0
