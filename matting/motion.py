"""Motion between frames: move a matte onto a later frame by optical flow; tell a still scene from a moving one.

When inference is slower than the camera, each shown frame is cut with a matte
computed on an older frame, so edges trail a moving person. Backward-warping
that matte along dense optical flow (OpenCV's DIS flow, on small gray frames)
moves the edges with the person. Where the flow is unreliable (occlusions,
cuts, fast motion), the old frame warped along it does not match the new one:
there the unwarped matte is kept instead of smearing; so it is where the old
frame as it was matches the new one at least as well (a person standing still
while the room behind them moves: the flow, smooth across the outline, would
drag their edge along). (This photometric check costs one remap, two absdiffs and
two box blurs of a small gray frame; a forward-backward flow check, which needs a second flow, was 35% slower
for the same errors in ``bench/lag.py``.)

Frames are BGR uint8 (any size); alphas float32 in [0, 1] at any size.
"""

from __future__ import annotations

import threading
import weakref

import cv2
import numpy as np

from .framememo import FrameMemo

#: Size (pixels) of the gray frames the flow is computed on: 256x144 for a 16:9 frame, 144x256 for a
#: portrait one, the aspect ratio kept (sized by width, a 16x1200 frame made a 256x19200 flow frame: 400 ms
#: a flow); never larger than the frame itself (a tiny frame scaled up gave the flow nothing more to see).
FLOW_AREA = 256 * 144
#: Frames of fewer pixels are not warped at all: at 64x48 the warped matte was further from the answer
#: than the unwarped one (``bench/lag.py``, N = 6: 1.04 of its error; 0.91 at 128x72); nor frames whose
#: flow frame would be under MIN_FLOW_SIDE on a side (DIS fails below that: a 10x1000 frame).
MIN_FLOW_AREA, MIN_FLOW_SIDE = 64 * 64, 16


def flow_size(h: int, w: int, area: int = FLOW_AREA) -> tuple[int, int]:
    """``(width, height)`` of the flow frame of an ``h`` x ``w`` frame (see :data:`FLOW_AREA`)."""
    scale = min(1.0, (area / (h * w)) ** 0.5)
    return max(1, round(w * scale)), max(1, round(h * scale))


#: DIS's finest pyramid level (0 = flow at full flow-frame resolution). ULTRAFAST's own 2 computes
#: the flow at 64 px wide; 1 (128 px) cut the lag error from 0.78 to 0.72 of the stale matte's at
#: N = 6 in ``bench/lag.py`` for 1 ms more; 0 gave 0.67 for 4 ms more.
FINEST_SCALE = 1
#: DIS's presets by name: live runs use ULTRAFAST; the slower ones show how far a better flow goes.
DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
#: Mismatch (grey levels, averaged over 5x5) between the new frame and the old one warped along the
#: flow, above which a pixel's flow is not trusted. (30 or 40 took the lag ratio at N = 12 from 0.62
#: to 0.60 in ``bench/lag.py``, but the compensated mattes flickered more: 0.0044-0.0049 against
#: 0.0034 at N = 24.)
MISMATCH_LEVELS = 20.0


def _exact_relative_map() -> int:
    """cv2.remap's flag for maps that hold offsets, not positions, where this OpenCV has it and it
    samples exactly where the grid + offset map does (5.0 does; 4.10-4.12 differ on about 0.1 % of
    pixels, by up to 8 grey levels); else 0."""
    flag = getattr(cv2, "WARP_RELATIVE_MAP", 0)
    if not flag:
        return 0
    rng = np.random.default_rng(0)
    h, w = 72, 128  # ~0.1 % of pixels differ where it is not exact: about 18 of these
    flow = rng.uniform(-6, 6, (h, w, 2)).astype(np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    where = cv2.add(flow, np.dstack([xs, ys]))
    for image in (rng.integers(0, 256, (h, w), dtype=np.uint8), rng.random((h, w), dtype=np.float32)):
        relative = cv2.remap(image, flow, None, cv2.INTER_LINEAR | flag, borderMode=cv2.BORDER_REPLICATE)
        absolute = cv2.remap(image, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if not np.array_equal(relative, absolute):
            return 0
    return flag


#: cv2.remap's relative-map flag where it is exact here (see :func:`_exact_relative_map`), else 0
RELATIVE_MAP = _exact_relative_map()
#: Nothing is warped when fewer than STILL_SHARE of the pixels of the flow frames, halved (area
#: averaged: sensor noise and JPEG ringing average out), changed by more than STILL_DIFF grey levels.
STILL_DIFF, STILL_SHARE = 12, 0.002


#: Shown frames whose flows are kept (:meth:`MotionCompensator.prepare` runs a frame or two ahead)
FLOW_FRAMES = 4


class MotionCompensator:
    """``warp(alpha, from_frame, to_frame)``: the matte of ``from_frame`` as it lies on ``to_frame``.

    The flow frame of ``from_frame`` is cached (mattes are reused for several
    shown frames), so each call costs one small resize, one DIS flow and one remap of the matte.
    The flow part (about two thirds of it) can be made ahead on another thread:
    ``prepare(from_frame, to_frame)`` (the live pipeline's capture thread, before it hands the
    frame on), and ``warp`` then only applies it. Flows are kept per pair of frames while the
    shown frame lives (the newest :data:`FLOW_FRAMES`); one flow is made at a time.
    """

    def __init__(self, flow_area: int = FLOW_AREA, mismatch_levels: float = MISMATCH_LEVELS,
                 preset: str = "ultrafast", finest_scale: int = FINEST_SCALE):
        self.flow_area = flow_area
        self.mismatch_levels = mismatch_levels
        self.preset = preset
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])  # (the others: bench/lag.py --flow-preset)
        self._dis.setFinestScale(finest_scale)
        self._lock = threading.Lock()  # one DIS and one cached gray frame: one flow at a time
        # per shown frame: {id(matte's frame): (weakref to it, (backward, reliable) or None when still)}
        self._flows = FrameMemo(FLOW_FRAMES)
        self.prepared = 0  # flows warp found made ahead by prepare
        # (the frame itself, its gray flow frame, that halved): the matte's frame, reused for many calls
        self._cached: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._grid: dict[tuple, np.ndarray] = {}  # pixel grids by size (x, y), without relative maps

    def _gray(self, frame: np.ndarray) -> np.ndarray:
        size = flow_size(*frame.shape[:2], self.flow_area)
        # Bilinear, not area, resampling: 7x cheaper at 720p (0.3 vs 2.3 ms here); the aliasing
        # does not hurt DIS (bench/lag.py gives the same errors).
        small = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
        return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small

    @staticmethod
    def _half(gray: np.ndarray) -> np.ndarray:
        h, w = gray.shape[:2]
        return cv2.resize(gray, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)

    def _gray_cached(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._cached is None or self._cached[0] is not frame:
            gray = self._gray(frame)
            self._cached = (frame, gray, self._half(gray))
        return self._cached[1], self._cached[2]

    def _grid2(self, h: int, w: int) -> np.ndarray:
        """The pixel grid as one (h, w, 2) float32 map (x, y): what cv2.remap samples with no flow."""
        grid = self._grid.get((h, w))
        if grid is None:
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            grid = self._grid[(h, w)] = np.dstack([xs, ys])
        return grid

    def _follow(self, image: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """``image`` sampled (bilinear, edges replicated) at each pixel plus its ``flow`` (h, w, 2;
        float32; x, y): OpenCV's relative maps where they are exact (5.0: no grid to add, the
        same result for 0.2-0.6 ms less CPU per 720p frame with a 512x288 matte), else grid + flow."""
        if RELATIVE_MAP:
            return cv2.remap(image, flow, None, cv2.INTER_LINEAR | RELATIVE_MAP, borderMode=cv2.BORDER_REPLICATE)
        where = cv2.add(flow, self._grid2(*flow.shape[:2]))
        return cv2.remap(image, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def flows(self, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(backward, reliable)`` for small gray frames: for each pixel of ``dst``, where it was
        in ``src``, and whether ``src`` warped along that flow matches ``dst`` there, and better
        than ``src`` itself does."""
        backward = self._dis.calc(dst, src, None)   # dst -> src
        warped = self._follow(src, backward)
        mismatch = cv2.blur(cv2.absdiff(warped, dst), (5, 5))
        # ... and only where following the flow explains the new frame better than staying put
        # (a still background, a plain wall: the matte already lies right there)
        unmoved = cv2.blur(cv2.absdiff(src, dst), (5, 5))
        return backward, (mismatch < self.mismatch_levels) & (mismatch < unmoved)

    def _kept(self, from_frame: np.ndarray, to_frame: np.ndarray):
        """The flow of this pair made earlier: ``(True, flow)``, or ``(False, None)``."""
        pairs = self._flows.get(to_frame)
        kept = pairs.get(id(from_frame)) if pairs is not None else None
        return (True, kept[1]) if kept is not None and kept[0]() is from_frame else (False, None)

    def flow(self, from_frame: np.ndarray, to_frame: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """``(backward, reliable)`` at the flow frames' size (see :meth:`flows`), or ``None`` when
        nothing moved beyond sensor noise; made once per pair of frames (thread-safe; never
        change the arrays)."""
        found, flow = self._kept(from_frame, to_frame)
        if found:
            return flow
        with self._lock:
            found, flow = self._kept(from_frame, to_frame)  # made meanwhile by the other thread
            if found:
                return flow
            (src, src_half), dst = self._gray_cached(from_frame), self._gray(to_frame)
            if (cv2.absdiff(src_half, self._half(dst)) > STILL_DIFF).mean() >= STILL_SHARE:
                flow = self.flows(src, dst)  # else nothing moved (beyond sensor noise): no flow to follow
                for array in flow:
                    array.setflags(write=False)  # kept and shared: a change would move every later warp
            pairs = self._flows.entry(to_frame, dict)
            with self._flows.lock:
                pairs[id(from_frame)] = (weakref.ref(from_frame), flow)
        return flow

    def _warpable(self, from_frame: np.ndarray, to_frame: np.ndarray) -> bool:
        """False for the same frame, frames of different sizes, or frames too small to follow motion in."""
        h, w = from_frame.shape[:2]
        return (from_frame is not to_frame and from_frame.shape == to_frame.shape and h * w >= MIN_FLOW_AREA
                and min(flow_size(h, w, self.flow_area)) >= MIN_FLOW_SIDE)

    def prepare(self, from_frame: np.ndarray, to_frame: np.ndarray) -> bool:
        """Make the flow :meth:`warp` will need for this pair now (on another thread, ahead of it);
        False when the pair needs none (the same frame, frames of different sizes, tiny frames)."""
        if not self._warpable(from_frame, to_frame):
            return False
        self.flow(from_frame, to_frame)
        return True

    def warp(self, alpha: np.ndarray, from_frame: np.ndarray, to_frame: np.ndarray) -> np.ndarray:
        """The matte of ``from_frame`` moved onto ``to_frame`` (same shape and dtype as ``alpha``)."""
        if not self._warpable(from_frame, to_frame):
            return alpha
        found, _ = self._kept(from_frame, to_frame)
        self.prepared += found
        flow = self.flow(from_frame, to_frame)
        if flow is None:
            return alpha
        backward, reliable = flow
        ah, aw = alpha.shape[:2]
        fh, fw = backward.shape[:2]
        # The flow in alpha pixels, upsampled once (2 channels), taken from the alpha's own pixel
        # grid: where each alpha pixel samples the old matte (exact at the borders too).
        keep = (~reliable).astype(np.uint8)
        if (fh, fw) != (ah, aw):
            backward = cv2.resize(backward * np.array([aw / fw, ah / fh], np.float32), (aw, ah),
                                  interpolation=cv2.INTER_LINEAR)
            keep = cv2.resize(keep, (aw, ah), interpolation=cv2.INTER_NEAREST)
        warped = self._follow(alpha, backward)
        cv2.copyTo(alpha, keep, warped)  # where the flow is unreliable the matte stays where it is
        return warped.astype(alpha.dtype, copy=False)

    def between(self, frame: np.ndarray, index: int, earlier: tuple[int, np.ndarray, np.ndarray],
                later: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """The matte of ``frame`` (number ``index``) from the mattes before and after it:
        ``earlier`` = (its frame's number, that frame, its matte), moved onto ``frame``; with
        ``later`` (the same, and that frame's :func:`scene_thumbnail`) of the same scene, that one
        moved back onto it too, the two weighed by how near each is in frames (a conversion can wait
        for the next matte; live cannot)."""
        before = self.warp(earlier[2], earlier[1], frame)
        if later is None or later[2].shape != before.shape or new_scene(scene_thumbnail(frame), later[3]):
            return before  # (mattes of two sizes: the picture changed size between them)
        after = self.warp(later[2], later[1], frame)
        share = (index - earlier[0]) / max(1, later[0] - earlier[0])
        return cv2.addWeighted(before, 1.0 - share, after, share, 0.0)


#: Same scene while at most SCENE_SHARE of a thumbnail's values moved by more than SCENE_LEVELS grey levels
#: (area-averaged thumbnails: sensor noise of σ ≈ 2 and MJPEG ringing stay far below; a lamp, a door,
#: a hand do not). The inference cadence and the compositor's reuse both decide with it.
SCENE_LEVELS, SCENE_SHARE = 8, 0.002


#: Frames whose halvings are kept for :func:`thumbnail`'s ``shared`` callers: at most the newest
#: few (the inference and render threads look at the same live frames a few milliseconds apart),
#: and only while the frame itself is alive (a photo's go with it).
SHARED_FRAMES = 4
_memo = FrameMemo(SHARED_FRAMES)
_shared, _shared_lock = _memo.entries, _memo.lock


def _shared_halvings(image: np.ndarray) -> list[np.ndarray]:
    """The list of ``image``'s halvings made so far (its first is half the size), shared by all threads."""
    return _memo.entry(image, list)


def thumbnail(image: np.ndarray, width: int, height: int, shared: bool = False) -> np.ndarray:
    """Area-average ``image`` (any dtype and channels) down to ``width`` x ``height``: halvings
    while they fit exactly (OpenCV's fast path, 10x a general area resize at 720p), then one
    area resize for the rest (0.25-0.7 ms from 720p to 160x90 here, as the machine drifts).

    ``shared``: ``image`` is a frame never changed once made (a live frame, a photo) that other
    callers (other threads too) thumbnail as well: its halvings are made once and reused by all
    while it lives (the still-scene check at 64 px and the blur at 160 px share all but the last
    step). The result may be that shared array: never change it in place."""
    levels = _shared_halvings(image) if shared else None
    level = 0
    while (image.shape[0] % 2 == 0 and image.shape[1] % 2 == 0
           and image.shape[0] >= 2 * height and image.shape[1] >= 2 * width):
        if levels is not None and level < len(levels):
            image = levels[level]
        else:
            image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
            if levels is not None:
                with _shared_lock:
                    if len(levels) == level:
                        levels.append(image)
        level += 1
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return image


def same_scene(thumb: np.ndarray, earlier: np.ndarray | None, levels: float = SCENE_LEVELS,
               share: float = SCENE_SHARE) -> bool:
    """True when two thumbnails of one size differ by no more than sensor noise."""
    return (earlier is not None and earlier.shape == thumb.shape
            and np.count_nonzero(cv2.absdiff(thumb, earlier) > levels) <= share * thumb.size)


#: Another scene altogether (a cut in a video, a camera switched, the lights turned on) when more
#: than NEW_SCENE_SHARE of a gray :func:`scene_thumbnail`'s pixels moved by more than
#: NEW_SCENE_LEVELS grey levels from the matte's frame. On the vlog clip its one cut moves 72-74 %
#: of them; talking, turning and the camera's own motion at most 19 % over 24 frames (1 s).
NEW_SCENE_LEVELS, NEW_SCENE_SHARE = 32, 0.5
#: Width of the gray thumbnails scenes are compared at (the height keeps the aspect ratio).
SCENE_WIDTH = 64


def scene_thumbnail(frame: np.ndarray) -> np.ndarray:
    """``frame`` (BGR or gray, any size) area-averaged to a gray thumbnail :data:`SCENE_WIDTH` wide
    (the halvings shared with the other callers: see :func:`thumbnail`)."""
    h, w = frame.shape[:2]
    small = thumbnail(frame, SCENE_WIDTH, max(4, round(h * SCENE_WIDTH / w)), shared=True)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small


def new_scene(thumb: np.ndarray, earlier: np.ndarray | None) -> bool:
    """True when two :func:`scene_thumbnail` s show different scenes (most of the picture changed
    far beyond motion, or the camera's picture changed shape): a matte of the earlier one is no
    use on this one, warped or not."""
    if earlier is None:
        return False
    if earlier.shape != thumb.shape:
        return True
    return np.count_nonzero(cv2.absdiff(thumb, earlier) > NEW_SCENE_LEVELS) > NEW_SCENE_SHARE * thumb.size


class SceneChange:
    """Has the input changed beyond sensor noise since the frame the newest matte was computed on?

    Frames are compared at 64 px wide (:func:`scene_thumbnail`, :func:`same_scene`):
    the scene counts as changed when more than ``share`` of the pixels moved by
    more than ``noise`` gray levels. A still scene is re-checked with a real
    matte every ``refresh_s`` seconds anyway (light changes slowly, people sit still).
    """

    def __init__(self, noise: float = SCENE_LEVELS, share: float = SCENE_SHARE, refresh_s: float = 2.0):
        self.noise, self.share, self.refresh_s = noise, share, refresh_s
        self._reference: np.ndarray | None = None
        self._reference_at = float("-inf")

    def changed(self, frame: np.ndarray, now: float) -> bool:
        """True when ``frame`` needs a new matte; it then becomes the reference."""
        small = scene_thumbnail(frame)
        still = (self._reference is not None and self._reference.shape == small.shape
                 and now - self._reference_at < self.refresh_s
                 and same_scene(small, self._reference, self.noise, self.share))
        if not still:
            self._reference, self._reference_at = small, now
        return not still

    def reset(self, frame: np.ndarray, now: float) -> None:
        """A matte was computed for ``frame`` for another reason: compare against it from now on."""
        self._reference, self._reference_at = scene_thumbnail(frame), now
