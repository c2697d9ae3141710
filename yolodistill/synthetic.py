"""Procedurally generated object-detection dataset in YOLO format (deterministic, offline), with the labels of any
Ultralytics task: boxes (detect), polygons (segment), keypoints (pose) or rotated boxes (obb), all derived from the
same rendered object masks, so a task's images are pixel for pixel those of the detection dataset of the same seed.

How the defaults were chosen (generator version 1, defaults seed 0, n_train 800, n_val 200, imgsz 160; 2-core CPU,
plain Ultralytics 8.4.190 from scratch: epochs 10, batch 16, imgsz 160, seed 0, amp off; Ultralytics trains on CPU with
cpu_count - 1 = 1 torch thread here, which the times include):

    yolov8n: mAP50 0.143, mAP50-95 0.065, 376 s
    yolov8s: mAP50 0.221, mAP50-95 0.113, 807 s  (mAP50-95 +73 % over yolov8n)

A first, harder setting (objects 5-15 % of the image side, 4-14 distractors, 10-40 clutter lines, stronger texture,
blur and noise, less colour contrast) left yolov8n at mAP50 0.045 (mAP50-95 0.013) after the same 10 epochs (408 s),
too close to zero for a demo, so clutter, noise and the smallest sizes were eased to the constants below. Writing the
default dataset takes about 6.5 s.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from .utils import cache_home, suggest

# Bump whenever the pixels or labels produced for a given seed change: it is part of the cache folder name.
GENERATOR_VERSION = 1

# Look-alikes on purpose: disc/ring/eye differ only by their interior, square/frame likewise, oval from disc by aspect
# ratio. At 11-29 px (imgsz 160) these cues span a few pixels, which is where a wider network pays off.
CLASS_NAMES = ("disc", "ring", "eye", "square", "frame", "oval")
# The hard negatives' outlines, each the near miss of a class (open arc of ring, needle of oval, half disc of disc).
# `lookalike` labels them as 6 more classes.
_DISTRACTOR_KINDS = ("triangle", "plus", "star", "arc", "needle", "halfdisc")

_SPLITS = ("train", "val")
_MIN_VISIBLE = 0.6  # occlusion never hides more than this share of an object's pixels
_MIN_CONTRAST = 80.0  # RGB distance between an object and the background under it, so no label is invisible
_JPEG_QUALITY = 90
TASKS = ("detect", "segment", "pose", "obb")
_SUFFIXES = {"segment": "seg", "pose": "pose", "obb": "obb"}  # preset name suffix of each task but detect
# Pose: every shape's 4 extreme points (topmost, rightmost, bottommost, leftmost pixel of its body), defined for any
# outline and any rotation, so no keypoint is ambiguous for a symmetric shape (unlike "the first corner" of a square).
# A horizontal flip swaps rightmost and leftmost.
KPT_SHAPE = (4, 3)  # (x, y, visibility): 2 visible, 1 hidden under a later object
FLIP_IDX = (0, 3, 2, 1)


@dataclass(frozen=True)
class Style:
    """How hard the images are: which classes, how many objects and hard negatives, how big, how much clutter.

    Ranges are inclusive for counts and [lo, hi) for the uniform draws.
    """

    classes: tuple[str, ...] = CLASS_NAMES
    objects: tuple[int, int] = (4, 20)
    distractors: tuple[int, int] = (2, 8)
    size: tuple[float, float] = (0.07, 0.18)  # object diameter / side as a fraction of the image side
    lines: tuple[int, int] = (4, 15)  # thin clutter lines in the background
    texture: tuple[float, float] = (5, 25)  # amplitude of the background texture
    noise: tuple[float, float] = (2, 6)  # std of the sensor noise


HARD = Style()
# The benchmarks' and the demo's default (the benchmark regime): four classes that differ in outline or interior,
# larger objects, fewer hard negatives and less clutter, so a YOLOv8n from scratch learns in minutes on a CPU while a
# YOLOv8s teacher trained for longer stays well ahead (measured figures in benchmarks/efficacy.py and README "Results").
GENTLE = Style(
    classes=("disc", "ring", "square", "oval"),
    objects=(1, 6),
    distractors=(0, 2),
    size=(0.14, 0.30),
    lines=(0, 4),
    texture=(3, 12),
    noise=(1, 3),
)

# Twelve classes, in look-alike pairs and triples (disc/ring/eye/half disc/arc, square/frame, oval/needle,
# triangle/star/plus), so telling them apart takes more than a few outline cues: the data of a converged YOLOv8s
# staying ahead of a converged YOLOv8n (benchmarks/suite.py's `long`). No unlabelled negatives: every kind is a class.
LOOKALIKE = Style(classes=CLASS_NAMES + _DISTRACTOR_KINDS, distractors=(0, 0))

_PRESETS = {
    # the harder, original preset: students stay near mAP50-95 0.01 in short runs
    "synthetic": {"seed": 0, "n_train": 800, "n_val": 200, "imgsz": 160, "style": HARD},
    "shapes": {"seed": 0, "n_train": 600, "n_val": 200, "imgsz": 128, "style": GENTLE},
    # twice `synthetic`'s training images, so that a wider network has more to learn from than a narrow one
    "lookalike": {"seed": 0, "n_train": 1600, "n_val": 200, "imgsz": 160, "style": LOOKALIKE},
}
# the images of `shapes` with the other tasks' labels (named with Ultralytics' model suffixes: yolov8n-seg.yaml)
_PRESETS.update({f"shapes-{suffix}": {**_PRESETS["shapes"], "task": t} for t, suffix in _SUFFIXES.items()})


def _coverage(shape: tuple[int, int], draw: Callable[[np.ndarray], None]) -> np.ndarray:
    """Anti-aliased coverage (uint8, 255 = fully covered) of whatever `draw(canvas)` paints with value 255."""
    canvas = np.zeros(shape, np.uint8)
    draw(canvas)
    return canvas


def _fixed(points: np.ndarray) -> np.ndarray:
    # cv2 takes sub-pixel coordinates only as fixed point; without it small shapes snap to the grid and jitter.
    return np.round(points * 16).astype(np.int32)


def _rotated_rect(cx: float, cy: float, w: float, h: float, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]], np.float64) / 2
    return corners @ np.array([[c, s], [-s, c]]) + (cx, cy)


def _ellipse(
    canvas: np.ndarray,
    cx: float,
    cy: float,
    ax: float,
    ay: float,
    angle: float,
    arc: tuple[float, float] = (0, 360),
    thickness: int = -1,
) -> None:
    """Filled (or outlined, with `thickness`) ellipse or arc; `angle` in radians, `arc` in degrees."""
    centre, axes = _fixed(np.array([cx, cy])), _fixed(np.array([ax, ay]))
    cv2.ellipse(canvas, centre, axes, np.degrees(angle), *arc, 255, thickness, cv2.LINE_AA, 4)


def _poly(canvas: np.ndarray, points: np.ndarray) -> None:
    cv2.fillPoly(canvas, [_fixed(points)], 255, cv2.LINE_AA, 4)


def _object_masks(
    kind: str, cx: float, cy: float, size: float, rng: np.random.Generator, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (body coverage, optional inner-mark coverage) of one labelled object."""
    r = size / 2
    angle = rng.uniform(0, np.pi)
    # Drawn for every class (not only ring/frame) so the random stream, hence the images, keep one layout.
    hole = r * rng.uniform(0.45, 0.65)
    if kind == "disc":
        return _coverage(shape, lambda c: _ellipse(c, cx, cy, r, r, 0)), None
    if kind == "ring":
        outer = _coverage(shape, lambda c: _ellipse(c, cx, cy, r, r, 0))
        inner = _coverage(shape, lambda c: _ellipse(c, cx, cy, hole, hole, 0))
        return cv2.subtract(outer, inner), None
    if kind == "eye":
        body = _coverage(shape, lambda c: _ellipse(c, cx, cy, r, r, 0))
        # The mark never shrinks below ~1.5 px radius, or an eye would be unreadable even in principle.
        dr, off = max(1.5, r * rng.uniform(0.25, 0.4)), r * rng.uniform(0, 0.25)
        dx, dy = off * np.cos(angle * 2), off * np.sin(angle * 2)
        return body, _coverage(shape, lambda c: _ellipse(c, cx + dx, cy + dy, dr, dr, 0))
    if kind == "square":
        side = size / np.sqrt(1.3)  # equal area with a disc of the same size so area is no cue
        return _coverage(shape, lambda c: _poly(c, _rotated_rect(cx, cy, side, side, angle))), None
    if kind == "frame":
        side = size / np.sqrt(1.3)
        outer = _coverage(shape, lambda c: _poly(c, _rotated_rect(cx, cy, side, side, angle)))
        inner = _coverage(shape, lambda c: _poly(c, _rotated_rect(cx, cy, side * hole / r, side * hole / r, angle)))
        return cv2.subtract(outer, inner), None
    if kind == "oval":
        aspect = rng.uniform(1.5, 2.0)
        return _coverage(shape, lambda c: _ellipse(c, cx, cy, r * np.sqrt(aspect), r / np.sqrt(aspect), angle)), None
    # the 0-π angle doubled: arc and half disc need every orientation (the other classes' draws stay as they were)
    return _outline_mask(kind, cx, cy, r, 2 * angle, rng, shape), None


def _outline_mask(
    kind: str, cx: float, cy: float, r: float, angle: float, rng: np.random.Generator, shape: tuple[int, int]
) -> np.ndarray:
    """Coverage of one of the `_DISTRACTOR_KINDS` of radius `r`, turned by `angle` (radians, 0-2π: arc and half disc
    have no rotational symmetry)."""
    if kind == "triangle":
        t = angle + np.array([0, 2, 4]) * np.pi / 3
        return _coverage(shape, lambda c: _poly(c, np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)))
    if kind == "plus":
        arm = r * rng.uniform(0.35, 0.5)
        a = _coverage(shape, lambda c: _poly(c, _rotated_rect(cx, cy, 2 * r, arm, angle)))
        b = _coverage(shape, lambda c: _poly(c, _rotated_rect(cx, cy, arm, 2 * r, angle)))
        return np.maximum(a, b)
    if kind == "star":
        t = angle + np.arange(10) * np.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        return _coverage(shape, lambda c: _poly(c, np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], 1)))
    if kind == "arc":  # a ring with a gap
        gap = rng.uniform(70, 140)
        thickness = max(1, round(r * 0.4))
        arc = (np.degrees(angle), np.degrees(angle) + 360 - gap)
        return _coverage(shape, lambda c: _ellipse(c, cx, cy, r - thickness / 2, r - thickness / 2, 0, arc, thickness))
    if kind == "needle":  # far more elongated than "oval"
        aspect = rng.uniform(3.5, 5.0)
        return _coverage(shape, lambda c: _ellipse(c, cx, cy, r * np.sqrt(aspect), r / np.sqrt(aspect), angle))
    if kind == "halfdisc":
        return _coverage(shape, lambda c: _ellipse(c, cx, cy, r, r, angle, (0, 180)))
    raise ValueError(kind)


def _distractor_mask(cx: float, cy: float, size: float, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Unlabelled hard negatives: shapes of the same size and colours that share parts of the classes' cues."""
    angle = rng.uniform(0, 2 * np.pi)
    return _outline_mask(_DISTRACTOR_KINDS[rng.integers(6)], cx, cy, size / 2, angle, rng, shape)


def _background(rng: np.random.Generator, n: int, style: Style) -> np.ndarray:
    """Smooth colour field + one periodic or noisy texture + thin clutter lines, all unlabelled."""
    k = int(rng.integers(2, 6))
    img = cv2.resize(rng.uniform(0, 255, (k, k, 3)).astype(np.float32), (n, n), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    amp = rng.uniform(*style.texture)
    texture = int(rng.integers(3))
    if texture == 0:  # stripes at a random angle and period
        t = rng.uniform(0, np.pi)
        wave = np.sin((xx * np.cos(t) + yy * np.sin(t)) * 2 * np.pi / rng.uniform(3, 12))
    elif texture == 1:  # blotchy noise at roughly object scale, the texture most easily mistaken for objects
        m = int(rng.integers(n // 16, n // 6))
        wave = cv2.resize(rng.standard_normal((m, m)).astype(np.float32), (n, n), interpolation=cv2.INTER_CUBIC)
    else:  # checkerboard
        p = rng.uniform(4, 12)
        wave = np.sign(np.sin(xx * np.pi / p) * np.sin(yy * np.pi / p))
    img += (amp * wave)[..., None] * rng.uniform(0.3, 1.0, 3).astype(np.float32)
    for _ in range(int(rng.integers(style.lines[0], style.lines[1] + 1))):
        p0, p1 = rng.uniform(0, n, 2), rng.uniform(0, n, 2)
        colour = rng.uniform(0, 255, 3).tolist()
        cv2.line(img, _fixed(p0), _fixed(p1), colour, 1, cv2.LINE_AA, 4)
    return img


def _blend(img: np.ndarray, coverage: np.ndarray, colour: np.ndarray) -> None:
    # Only the shape's bounding rectangle: blending the whole image per shape dominated the run time.
    x, y, w, h = cv2.boundingRect(coverage)
    roi = img[y : y + h, x : x + w]
    roi += coverage[y : y + h, x : x + w, None].astype(np.float32) / 255 * (colour - roi)


def _contrasting_colour(rng: np.random.Generator, against: np.ndarray) -> np.ndarray:
    for _ in range(20):
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        if np.linalg.norm(colour - against) >= _MIN_CONTRAST:
            break
    return colour


@dataclass
class _Object:
    """One labelled object: class, amodal box (cx, cy, w, h) and, in pixels, its outline polygon (P×2), the corners
    of its minimum-area rotated rectangle (4×2) and its 4 extreme points (4×3: x, y, visibility)."""

    cls: int
    box: tuple[float, float, float, float]
    polygon: np.ndarray
    rbox: np.ndarray
    kpts: np.ndarray


def _extreme_points(solid: np.ndarray) -> np.ndarray:
    """Topmost, rightmost, bottommost and leftmost pixel centre of a boolean mask (ties: their mean), 4×2."""
    ys, xs = np.nonzero(solid)
    points = []
    for coord, other, pick in ((ys, xs, ys.min()), (xs, ys, xs.max()), (ys, xs, ys.max()), (xs, ys, xs.min())):
        along = other[coord == pick].mean()
        points.append((along, pick) if coord is ys else (pick, along))
    return np.array(points, np.float64) + 0.5


def _outline(body: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outer outline polygon (P×2, pixel corners) of the amodal body (coverage > 63, as the box) and the corners of
    its minimum-area rotated rectangle (4×2). A ring's polygon is its outer outline: YOLO polygons have no holes."""
    contours, _ = cv2.findContours((body > 63).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contour = max(contours, key=cv2.contourArea)
    rbox = cv2.boxPoints(cv2.minAreaRect(contour)).astype(np.float64)
    return contour[:, 0].astype(np.float64), np.clip(rbox, 0, body.shape[0])  # a corner may poke out at the border


def _render(rng: np.random.Generator, n: int, style: Style = HARD) -> tuple[np.ndarray, list[_Object]]:
    """Draw one image; return it (uint8 BGR) and its labelled objects (boxes normalised, geometry in pixels)."""
    shape = (n, n)
    img = _background(rng, n, style)
    lo, hi = (f * n for f in style.size)

    for _ in range(int(rng.integers(style.distractors[0], style.distractors[1] + 1))):
        size = rng.uniform(lo, hi)
        cx, cy = rng.uniform(0, n, 2)
        alpha = _distractor_mask(cx, cy, size, rng, shape)
        _blend(img, alpha, rng.uniform(0, 255, 3).astype(np.float32))

    labels = []
    # owner[y, x] = 1 + index of the topmost labelled object there (0 = none); cheaper than one mask per object.
    owner = np.zeros(shape, np.int32)
    area, visible = [0], [0]
    for _ in range(int(rng.integers(style.objects[0], style.objects[1] + 1))):
        cls = int(rng.integers(len(style.classes)))
        for _attempt in range(20):
            size = rng.uniform(lo, hi)
            # Keep every object wholly inside, so boxes need no clipping: an oval reaches 0.71 size from its centre, a
            # needle 1.12 size.
            margin = size * (1.15 if style.classes[cls] == "needle" else 0.75) + 1
            cx, cy = rng.uniform(margin, n - margin, 2)
            body, mark = _object_masks(style.classes[cls], cx, cy, size, rng, shape)
            solid = body > 127
            left = np.array(visible) - np.bincount(owner[solid], minlength=len(visible))
            if np.all(left[1:] >= _MIN_VISIBLE * np.array(area[1:])):
                break
        else:
            continue  # too crowded: fewer objects rather than an unreadable one
        visible = [*left.tolist(), int(solid.sum())]
        area.append(visible[-1])
        owner[solid] = len(area) - 1
        colour = _contrasting_colour(rng, img[solid].mean(0))
        _blend(img, body, colour)
        if mark is not None:
            _blend(img, mark, _contrasting_colour(rng, colour))
        # The box is the whole object even where occluded (amodal), the usual convention of detection datasets.
        x, y, w, h = cv2.boundingRect((body > 63).astype(np.uint8))
        polygon, rbox = _outline(body)
        kpts = np.concatenate([_extreme_points(solid), np.zeros((4, 1))], 1)
        labels.append(_Object(cls, ((x + w / 2) / n, (y + h / 2) / n, w / n, h / n), polygon, rbox, kpts))

    # visibility once every object is drawn: 2 where the keypoint's pixel still shows its own object, else 1
    for i, obj in enumerate(labels):
        px = obj.kpts[:, :2].astype(int)
        obj.kpts[:, 2] = np.where(owner[px[:, 1], px[:, 0]] == i + 1, 2, 1)

    # Sensor-like degradations; blur before noise, as in a camera.
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.7))
    img = img * rng.uniform(0.7, 1.2) + rng.uniform(-25, 25)
    img += rng.normal(0, rng.uniform(*style.noise), img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), labels


def _label_line(obj: _Object, task: str, n: int) -> str:
    """One object's line in the YOLO label format of `task`, coordinates normalised by the image side `n`."""
    if task == "segment":
        values = (obj.polygon / n).ravel()
    elif task == "obb":
        values = (obj.rbox / n).ravel()
    elif task == "pose":
        values = np.concatenate([obj.box, (obj.kpts * (1 / n, 1 / n, 1)).ravel()])
    else:
        values = obj.box
    return " ".join([str(obj.cls), *(f"{v:.6f}" for v in values)]) + "\n"


def _write_split(
    tmp: Path, split: str, split_id: int, count: int, seed: int, imgsz: int, style: Style, task: str
) -> None:
    img_dir, lbl_dir = tmp / "images" / split, tmp / "labels" / split
    img_dir.mkdir(parents=True)
    lbl_dir.mkdir(parents=True)
    for i in range(count):
        # Seeding per image (not per split) keeps every image reproducible on its own and independent of n_train.
        img, labels = _render(np.random.default_rng([seed, split_id, i]), imgsz, style)
        stem = f"{split}_{i:05d}"
        if not cv2.imwrite(str(img_dir / f"{stem}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]):
            raise OSError(f"could not write {img_dir / stem}.jpg")
        (lbl_dir / f"{stem}.txt").write_text("".join(_label_line(obj, task, imgsz) for obj in labels))


def _build(
    root: Path, seed: int, n_train: int, n_val: int, imgsz: int, style: Style = HARD, task: str = "detect"
) -> Path:
    """Write a complete dataset meant for `root` into a fresh hidden sibling directory and return that directory."""
    if imgsz < 32:
        raise ValueError(f"imgsz must be at least 32, got {imgsz}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    tmp = root.with_name(f".{root.name}.tmp-{uuid.uuid4().hex}")
    tmp.mkdir(parents=True)
    try:
        for split_id, (split, count) in enumerate(zip(_SPLITS, (n_train, n_val))):
            _write_split(tmp, split, split_id, count, seed, imgsz, style, task)
        data = {"path": str(root), "train": "images/train", "val": "images/val"}
        if task == "pose":
            data.update(kpt_shape=list(KPT_SHAPE), flip_idx=list(FLIP_IDX))
        data["names"] = dict(enumerate(style.classes))
        (tmp / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def generate(
    root: Path,
    *,
    seed: int = 0,
    n_train: int = 800,
    n_val: int = 200,
    imgsz: int = 160,
    style: Style = HARD,
    task: str = "detect",
) -> Path:
    """Write the dataset under `root` and return its data.yaml.

    Layout: images/{train,val}/*.jpg, labels/{train,val}/*.txt and data.yaml (absolute `path`). One line per object,
    coordinates normalised, as Ultralytics reads `task`'s labels: detect 'cls cx cy w h'; segment 'cls x1 y1 ... xP yP'
    (the outer outline); obb 'cls x1 y1 ... x4 y4' (the outline's minimum-area rotated rectangle); pose 'cls cx cy w h'
    then x y v for each of the 4 extreme points (data.yaml has `kpt_shape` [4, 3] and `flip_idx` [0, 3, 2, 1]). Built
    in a temporary sibling directory and renamed into place, so `root` never holds a half-written dataset; an
    existing `root` is replaced.
    """
    root = Path(root).resolve()
    tmp = _build(root, seed, n_train, n_val, imgsz, style, task)
    try:
        if root.exists():
            # A directory cannot be renamed over a non-empty one, so move the old one aside first.
            old = root.with_name(f".{root.name}.old-{uuid.uuid4().hex}")
            root.rename(old)
            tmp.rename(root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root / "data.yaml"


def builtin(name: str = "synthetic", cache_dir: Path | None = None) -> Path:
    """Return the data.yaml of a built-in dataset, generating it on first use.

    Cached under `cache_dir`, else $YOLODISTILL_HOME, else ~/.cache/yolodistill, in a folder named after the
    generator version and parameters so a changed generator never reuses stale files. Safe to call from several
    processes at once: the first to finish publishes its copy, the others discard theirs.
    """
    if name not in _PRESETS:
        raise suggest(name, _PRESETS, "built-in dataset")
    p = _PRESETS[name]
    style = hashlib.sha1(repr(p["style"]).encode()).hexdigest()[:6]  # a retuned style never reuses stale images
    folder = f"{name}-v{GENERATOR_VERSION}-{style}-seed{p['seed']}-train{p['n_train']}-val{p['n_val']}-img{p['imgsz']}"
    root = ((Path(cache_dir) if cache_dir is not None else cache_home()) / folder).resolve()
    yaml_path = root / "data.yaml"
    # Datasets only ever appear at `root` by a rename of a complete one, so the file's presence means complete.
    if yaml_path.is_file():
        return yaml_path
    tmp = _build(root, **p)
    try:
        # Unlike generate(), never replace: another process may already be training on the copy that is there.
        tmp.rename(root)
    except OSError:
        if not yaml_path.is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return yaml_path
