"""Frames prepared on the engine's device (matting.device_prep), checked on a CPU torch device."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from fakes import CollectSink
from matting.device_prep import DeviceResizer, gray, matches_opencv, resize_weights
from matting.engine import inference_shape, resize_for_inference
from matting.framememo import FrameMemo, device_frames
from matting.temporal import DeviceEMA, MotionAwareEMA, _guide


def test_resize_weights_rows_sum_to_one_and_shrink_by_area():
    for n_in, n_out in [(1080, 288), (1920, 512), (720, 128), (7, 3), (60, 128), (5, 5)]:
        weights = resize_weights(n_in, n_out)
        assert weights.shape == (n_out, n_in)
        assert np.allclose(weights.sum(axis=1), 1.0) and (weights >= 0).all()
    # 4 -> 2 averages pairs; 3 -> 2 gives the middle pixel half to each side
    assert np.allclose(resize_weights(4, 2), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    assert np.allclose(resize_weights(3, 2), [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]])


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (517, 301), (333, 187), (100, 60),
                                  (447, 298), (298, 448), (910, 512)])  # the last three: an axis each way
def test_device_resize_is_opencvs_within_one_grey_level(vlog_frames, size):
    """The inference-size resize on the device gives OpenCV's pixels (area when shrinking, linear when
    growing, as resize_for_inference chooses), rounded the same way: at most one level apart."""
    frame = cv2.resize(vlog_frames[0], size, interpolation=cv2.INTER_AREA) if size != (1280, 720) else vlog_frames[0]
    resizer = DeviceResizer("cpu")
    for inference_size in (128, 288, 512):
        shape = inference_shape(frame.shape, inference_size)
        expected = resize_for_inference(frame, shape).astype(np.float32)
        got = resizer.resize(frame, shape).permute(1, 2, 0).numpy()
        assert got.shape == expected.shape
        diff = np.abs(got - expected)
        assert diff.max() <= 1.0 and diff.mean() < 0.15, (size, shape, diff.max(), diff.mean())


def test_device_resize_halving_and_gray_are_opencvs_exactly(vlog_frames):
    """An exact halving rounds halves up as OpenCV's fast path does; the gray weights are the
    installed OpenCV's (4.x and 5.x differ); an axis going each way takes OpenCV's own resize."""
    import torch

    frame = cv2.resize(vlog_frames[2], (1024, 576), interpolation=cv2.INTER_AREA)
    got = DeviceResizer("cpu").resize(frame, (288, 512)).permute(1, 2, 0).numpy()
    assert np.array_equal(got, resize_for_inference(frame, (288, 512)))
    pixels = np.random.default_rng(4).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    assert np.array_equal(gray(torch.from_numpy(pixels).permute(2, 0, 1).float()).numpy(),
                          cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY))
    assert matches_opencv(720, 1280, 288, 512) and matches_opencv(60, 100, 128, 224)
    assert not matches_opencv(298, 447, 288, 448) and not matches_opencv(448, 298, 512, 288)
    mixed = cv2.resize(vlog_frames[2], (447, 298), interpolation=cv2.INTER_AREA)
    got = DeviceResizer("cpu").resize(mixed, (288, 448)).permute(1, 2, 0).numpy()
    assert np.array_equal(got, resize_for_inference(mixed, (288, 448)))


def test_device_guide_is_the_host_guide_within_one_grey_level(vlog_frames):
    """The smoother's motion guide made on the device (gray of the resized frame, OpenCV's fixed-point
    weights) is the host's (resize of the gray frame) within a level; none is left when growing."""
    frame = cv2.resize(vlog_frames[3], (1920, 1080))
    for shape in [(288, 512), (128, 224), (512, 910)]:
        DeviceResizer("cpu").resize(frame, shape)
        guide = device_frames.get(frame)[("guide", *shape)].numpy()
        assert np.abs(guide - _guide(frame, shape)).max() <= 1.0
    small = vlog_frames[3][:60, :100].copy()
    DeviceResizer("cpu").resize(small, (128, 213))
    assert ("guide", 128, 213) not in device_frames.get(small)
    assert gray(DeviceResizer("cpu").resize(frame, (1080, 1920))).shape == (1080, 1920)


def test_engine_with_device_resize_matches_the_host_resize(reference_ckpt, vlog_frames):
    from matting.torch_engine import TorchModnetEngine

    host = TorchModnetEngine(reference_ckpt, inference_size=128, device="cpu")
    device = TorchModnetEngine(reference_ckpt, inference_size=128, device="cpu", device_resize=True)
    for frame in vlog_frames[:3]:
        a, b = host.infer(frame), device.infer(frame)
        assert a.shape == b.shape and np.abs(a - b).max() < 0.05 and np.abs(a - b).mean() < 0.005
        assert device_frames.get(frame)["image"].shape == frame.shape  # left for the compositor


def test_cuda_graphs_fall_back_to_eager_with_a_warning(reference_ckpt, vlog_frames, caplog):
    """Where a graph cannot be captured (here: no CUDA) the engine says so once and runs eagerly."""
    from matting.torch_engine import TorchModnetEngine

    eager = TorchModnetEngine(reference_ckpt, inference_size=128, device="cpu")
    graphs = TorchModnetEngine(reference_ckpt, inference_size=128, device="cpu", cuda_graphs=True)
    assert "CUDA graphs" in graphs.describe() and "CUDA graphs" not in eager.describe()
    with caplog.at_level(logging.WARNING):
        first = graphs.infer(vlog_frames[0])
        second = graphs.infer(vlog_frames[1])
    assert [r.getMessage() for r in caplog.records if "CUDA graphs" in r.getMessage()][0].startswith(
        "CUDA graphs unavailable")
    assert len([r for r in caplog.records if "CUDA graphs" in r.getMessage()]) == 1
    assert np.array_equal(first, eager.infer(vlog_frames[0])) and np.array_equal(second, eager.infer(vlog_frames[1]))
    assert "CUDA graphs" not in graphs.describe()


def test_a_capture_failing_without_a_message_still_falls_back(reference_ckpt, vlog_frames, monkeypatch, caplog):
    from matting.torch_engine import TorchModnetEngine

    engine = TorchModnetEngine(reference_ckpt, inference_size=128, device="cpu", cuda_graphs=True)

    def fail(key, tensor):
        raise RuntimeError()

    monkeypatch.setattr(engine, "_capture", fail)
    with caplog.at_level(logging.WARNING):
        assert engine.infer(vlog_frames[0]).shape == (128, 224)
    assert "CUDA graphs unavailable (RuntimeError)" in caplog.text and not engine.cuda_graphs


def test_graph_replays_hand_out_mattes_of_their_own(reference_ckpt, vlog_frames, monkeypatch):
    """The CUDA-graph path (copy in, replay, copy out) with a stand-in graph that replays the model
    on a CPU: one capture per size, each matte equal to eager's, and an earlier matte is not
    overwritten by a later replay (the OFD smoother keeps three of them)."""
    import torch

    from matting.torch_engine import TorchModnetEngine

    eager = TorchModnetEngine(reference_ckpt, inference_size=128, device="cpu")
    engine = TorchModnetEngine(reference_ckpt, inference_size=128, device="cpu", cuda_graphs=True)
    captured = []

    class StandInGraph:
        def __init__(self, static_in, static_out):
            self.static_in, self.static_out = static_in, static_out

        def replay(self):
            self.static_out.copy_(engine.model(self.static_in, True)[2])

    def capture(key, tensor):
        static_in = tensor.clone()
        graph = StandInGraph(static_in, engine.model(static_in, True)[2])
        entry = engine._graphs[key] = (graph, static_in, graph.static_out)
        captured.append(key)
        return entry

    monkeypatch.setattr(engine, "_capture", capture)
    mattes = [engine.infer_tensor(frame) for frame in vlog_frames[:3]]
    assert len(captured) == 1
    for matte, frame in zip(mattes, vlog_frames[:3]):
        assert torch.equal(matte, eager.infer_tensor(frame))
    assert not torch.equal(mattes[0], mattes[2])
    small = cv2.resize(vlog_frames[0], (640, 360))  # same inference size: the same graph
    engine.infer_tensor(small)
    engine.infer_tensor(cv2.resize(vlog_frames[0], (360, 640)))  # portrait: a second one
    assert len(captured) == 2


def test_same_device_reads_cuda_as_the_current_cuda_device():
    """torch says cuda != cuda:0; the compositor must still take the engine's copy of the frame."""
    import torch

    from compositing.gpu_compositor import same_device

    assert same_device(torch.device("cuda", 0), torch.device("cuda"))
    assert same_device(torch.device("cuda", 1), torch.device("cuda:1"))
    assert not same_device(torch.device("cuda", 0), torch.device("cuda:1"))
    assert not same_device(torch.device("cpu"), torch.device("cuda"))
    assert same_device(torch.device("cpu"), torch.device("cpu"))


def test_photo_engines_run_without_graphs_or_device_resize(reference_ckpt, monkeypatch):
    """A photo is a one-off size (a graph capture costs several eager runs) and may be huge."""
    import matting.torch_engine
    from matting import create_engine

    made = []

    class Recorded(matting.torch_engine.TorchModnetEngine):
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(matting.torch_engine, "TorchModnetEngine", Recorded)
    create_engine("modnet", "torch", weights=str(reference_ckpt), device="cpu", photo=True)
    create_engine("modnet", "torch", weights=str(reference_ckpt), device="cpu", photo=False)
    assert made[0]["cuda_graphs"] is False and made[0]["device_resize"] is False
    assert made[1]["cuda_graphs"] is None and made[1]["device_resize"] is None  # live: on where CUDA is


def test_device_ema_takes_the_engines_guide_and_matches_the_host_ema(vlog_frames):
    """DeviceEMA uses the guide the engine left for a frame (no host gray, no upload) and stays
    with the host EMA, whose guide differs by at most a level."""
    import torch

    frames = [cv2.resize(f, (1920, 1080)) for f in vlog_frames[:6]]
    rng = np.random.default_rng(1)
    host, dev = MotionAwareEMA(), DeviceEMA("cpu")
    uploads = []
    real_upload = dev.on.upload
    dev.on.upload = lambda array: uploads.append(array.shape) or real_upload(array)
    for i, frame in enumerate(frames):
        DeviceResizer("cpu").resize(frame, (288, 512))
        alpha = rng.random((288, 512)).astype(np.float32)
        (_, a, _), = host.push(i, alpha, frame)
        (_, b, _), = dev.push(i, torch.from_numpy(alpha), frame)
        # a guide one level off moves the EMA's weight by at most 0.075 of the alpha change, in the
        # few pixels where the two guides differ (and that carries over, fading, to later frames)
        diff = np.abs(a - b.numpy())
        assert diff.max() <= 0.3 and diff.mean() < 0.003, (i, diff.max(), diff.mean())
    assert uploads == []


def test_frame_memo_keeps_values_while_the_frame_lives():
    memo = FrameMemo(2)
    frames = [np.zeros((4, 4), np.uint8) for _ in range(3)]
    assert memo.get(frames[0]) is None
    value = memo.entry(frames[0], dict)
    assert memo.entry(frames[0], dict) is value and memo.get(frames[0]) is value
    memo.entry(frames[1], dict)
    memo.entry(frames[2], dict)
    assert memo.get(frames[0]) is None and len(memo.entries) == 2  # only the newest two
    key = id(frames[2])
    del frames[2]
    assert key not in memo.entries  # gone with its frame


@pytest.mark.parametrize("matte_every", [1, 3])
def test_pipeline_with_device_prep_uploads_each_frame_once_and_matches_the_host_path(reference_ckpt, vlog_path,
                                                                                      matte_every):
    """The whole GPU path as CUDA runs it (frames resized on the device, the engine's guide in the
    smoother, the engine's copy of the frame in the compositor) on a CPU device: no frame is uploaded
    twice, and the output is the host path's but for the resize's one-level rounding ties. With
    --matte-every 3 the frames between mattes take the mattes on both sides (device tensors) too."""
    from compositing import BackgroundLibrary, ColorBackground, Compositor
    from compositing.gpu_compositor import TorchCompositor
    from matting import make_smoother
    from matting.torch_engine import TorchModnetEngine
    from realtime import Pipeline, PipelineOptions
    from realtime.sources import VideoSource

    class Counted(TorchCompositor):
        uploads: list = []

        def _upload(self, array):
            Counted.uploads.append(array.shape)
            return super()._upload(array)

    outputs = []
    for on_device in (False, True):
        source = VideoSource(str(vlog_path), pace=False)
        source.open()
        first = source.read()
        sink = CollectSink()
        engine = TorchModnetEngine(reference_ckpt, inference_size=128, device="cpu", device_resize=on_device)
        compositor = Counted("cpu") if on_device else Compositor()
        library = BackgroundLibrary(None, initial=ColorBackground((40, 200, 90)))
        pipeline = Pipeline(source, engine, make_smoother("ema", device="cpu" if on_device else None), compositor,
                            library, [sink], options=PipelineOptions(mode="sync", lossless=True, terminal_keys=False,
                                                                     max_frames=8, device_alpha=on_device,
                                                                     matte_every=matte_every),
                            first_frame=first)
        pipeline.run()
        outputs.append(sink.frames)
    host, device = outputs
    assert len(device) == len(host) >= 7
    # the colour background, once; never a frame the engine had (a frame between mattes never went up)
    between = sum(1 for i in range(len(device)) if i % matte_every)
    assert len(Counted.uploads) == 1 + between, Counted.uploads
    for a, b in zip(host, device):
        diff = np.abs(a.astype(int) - b)
        assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 8, (diff.mean(), np.percentile(diff, 99.9))
