"""Tests of the procedurally generated dataset: determinism, label validity, caching and atomic writes."""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from yolodistill import synthetic

os.environ.setdefault("YOLO_OFFLINE", "1")

SMALL = {"n_train": 6, "n_val": 3, "imgsz": 96}


def _files(root: Path, kind: str) -> list[Path]:
    return sorted((root / kind).rglob("*.*"))


def test_same_seed_identical_different_seed_differs(tmp_path):
    a = synthetic.generate(tmp_path / "a", seed=3, **SMALL).parent
    b = synthetic.generate(tmp_path / "b", seed=3, **SMALL).parent
    c = synthetic.generate(tmp_path / "c", seed=4, **SMALL).parent

    labels_a, labels_b, labels_c = (_files(r, "labels") for r in (a, b, c))
    assert [p.relative_to(a) for p in labels_a] == [p.relative_to(b) for p in labels_b]
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(labels_a, labels_b))
    for p, q in zip(_files(a, "images"), _files(b, "images")):
        assert np.array_equal(cv2.imread(str(p)), cv2.imread(str(q)))

    assert any(p.read_bytes() != q.read_bytes() for p, q in zip(labels_a, labels_c))
    assert not all(
        np.array_equal(cv2.imread(str(p)), cv2.imread(str(q))) for p, q in zip(_files(a, "images"), _files(c, "images"))
    )


def test_labels_valid_and_paired(tmp_path):
    root = synthetic.generate(tmp_path / "ds", seed=1, **SMALL).parent
    for split, count in (("train", SMALL["n_train"]), ("val", SMALL["n_val"])):
        images = sorted((root / "images" / split).iterdir())
        labels = sorted((root / "labels" / split).iterdir())
        assert len(images) == len(labels) == count
        assert [p.stem for p in images] == [p.stem for p in labels]
        for img_path, lbl_path in zip(images, labels):
            assert cv2.imread(str(img_path)).shape == (SMALL["imgsz"], SMALL["imgsz"], 3)
            lines = lbl_path.read_text().splitlines()
            assert lines, f"{lbl_path.name} has no objects"
            for line in lines:
                cls, cx, cy, w, h = line.split()
                assert int(cls) in range(len(synthetic.CLASS_NAMES))
                cx, cy, w, h = map(float, (cx, cy, w, h))
                assert w > 0 and h > 0
                assert cx - w / 2 >= 0 and cx + w / 2 <= 1 and cy - h / 2 >= 0 and cy + h / 2 <= 1


def test_data_yaml_loads_with_ultralytics(tmp_path):
    from ultralytics.data.utils import check_det_dataset

    yaml_path = synthetic.generate(tmp_path / "ds", **SMALL)
    raw = yaml.safe_load(yaml_path.read_text())
    assert raw["names"] == dict(enumerate(synthetic.CLASS_NAMES))
    data = check_det_dataset(str(yaml_path))
    assert data["nc"] == len(synthetic.CLASS_NAMES)
    assert Path(data["train"]) == yaml_path.parent / "images" / "train"
    assert Path(data["val"]).is_dir()


def test_generate_replaces_existing_root(tmp_path):
    root = tmp_path / "ds"
    synthetic.generate(root, seed=0, **SMALL)
    (root / "stale.txt").write_text("left over")
    synthetic.generate(root, seed=0, **SMALL)
    assert not (root / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_builtin_generates_once_then_reuses(tmp_path, monkeypatch):
    monkeypatch.setitem(synthetic._PRESETS, "synthetic", {"seed": 0, "style": synthetic.HARD, **SMALL})
    calls = []
    real_build = synthetic._build

    def counting_build(*args, **kwargs):
        calls.append(args)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(synthetic, "_build", counting_build)
    first = synthetic.builtin(cache_dir=tmp_path)
    mtime = first.stat().st_mtime_ns
    second = synthetic.builtin(cache_dir=tmp_path)

    assert first == second and len(calls) == 1
    assert second.stat().st_mtime_ns == mtime
    assert first.parent.parent == tmp_path.resolve()
    assert f"v{synthetic.GENERATOR_VERSION}" in first.parent.name
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.parent.name]


def test_builtin_keeps_copy_published_concurrently(tmp_path, monkeypatch):
    monkeypatch.setitem(synthetic._PRESETS, "synthetic", {"seed": 0, "style": synthetic.HARD, **SMALL})
    real_build = synthetic._build
    published = []

    def build_while_another_process_publishes(root, *args, **kwargs):
        real_build(root, *args, **kwargs).rename(root)  # the other process wins the race
        published.append((root / "data.yaml", root.stat().st_ino))
        return real_build(root, *args, **kwargs)

    monkeypatch.setattr(synthetic, "_build", build_while_another_process_publishes)
    yaml_path = synthetic.builtin(cache_dir=tmp_path)

    # The other process may be training on its copy already: it must stay in place, and ours must not linger.
    assert published == [(yaml_path, yaml_path.parent.stat().st_ino)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [yaml_path.parent.name]


def test_builtin_cache_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setitem(synthetic._PRESETS, "synthetic", {"seed": 0, "style": synthetic.HARD, **SMALL})
    monkeypatch.setenv("YOLODISTILL_HOME", str(tmp_path))
    assert synthetic.builtin().parent.parent == tmp_path.resolve()
    with pytest.raises(ValueError, match="unknown"):
        synthetic.builtin("nope", cache_dir=tmp_path)


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch, existing):
    root = tmp_path / "ds"
    before = {}
    if existing:
        synthetic.generate(root, seed=0, **SMALL)
        before = {p: p.read_bytes() for p in _files(root, "labels")}
    real_imwrite = cv2.imwrite
    written = []

    def failing_imwrite(*args, **kwargs):
        if len(written) == 4:
            raise KeyboardInterrupt  # the worst case: not even an Exception
        written.append(args[0])
        return real_imwrite(*args, **kwargs)

    monkeypatch.setattr(cv2, "imwrite", failing_imwrite)
    with pytest.raises(KeyboardInterrupt):
        synthetic.generate(root, seed=1, **SMALL)
    assert len(written) == 4
    # No temporary sibling survives, and a dataset already at `root` is untouched.
    assert [p.name for p in tmp_path.iterdir()] == (["ds"] if existing else [])
    assert {p: p.read_bytes() for p in _files(root, "labels")} == before


def test_gentle_style_is_its_own_dataset(tmp_path):
    """The `shapes` preset's style: its own class list in data.yaml, fewer and larger objects than the default style."""
    hard = synthetic.generate(tmp_path / "hard", seed=0, **SMALL).parent
    gentle = synthetic.generate(tmp_path / "gentle", seed=0, style=synthetic.GENTLE, **SMALL).parent
    assert yaml.safe_load((gentle / "data.yaml").read_text())["names"] == dict(enumerate(synthetic.GENTLE.classes))

    def boxes(root):
        rows = [
            line.split()
            for f in sorted((root / "labels" / "train").glob("*.txt"))
            for line in f.read_text().splitlines()
        ]
        return np.array(rows, float).reshape(-1, 5)

    g, h = boxes(gentle), boxes(hard)
    assert g[:, 0].max() < len(synthetic.GENTLE.classes)
    assert len(g) < len(h) and g[:, 3].mean() > h[:, 3].mean()


def test_lookalike_style_labels_every_kind_and_draws_no_negatives(tmp_path):
    """`lookalike`: the 6 classes and the 6 hard-negative outlines as classes, each labelled, wholly in the image."""
    root = synthetic.generate(tmp_path / "look", seed=0, style=synthetic.LOOKALIKE, **{**SMALL, "n_train": 30})
    names = yaml.safe_load(root.read_text())["names"]
    assert list(names.values()) == [*synthetic.CLASS_NAMES, "triangle", "plus", "star", "arc", "needle", "halfdisc"]
    rows = np.array(_rows(root.parent))
    assert set(rows[:, 0].astype(int)) == set(names)  # every kind drawn and labelled
    cx, cy, w, h = rows[:, 1:].T
    assert (w > 0).all() and (cx - w / 2 >= 0).all() and (cx + w / 2 <= 1).all()
    assert (cy - h / 2 >= 0).all() and (cy + h / 2 <= 1).all()
    assert synthetic._PRESETS["lookalike"]["style"] is synthetic.LOOKALIKE
    assert synthetic.LOOKALIKE.distractors == (0, 0)  # an unlabelled triangle would contradict the labelled ones


def _rows(root: Path, split: str = "train") -> list[list[float]]:
    return [
        [float(v) for v in line.split()]
        for f in sorted((root / "labels" / split).glob("*.txt"))
        for line in f.read_text().splitlines()
    ]


@pytest.mark.parametrize("task", ["segment", "pose", "obb"])
def test_task_labels_are_deterministic_over_the_same_images(tmp_path, task):
    """A task's dataset is the detection dataset of the same seed with other labels: same pixels, one line per box."""
    detect = synthetic.generate(tmp_path / "detect", seed=3, style=synthetic.GENTLE, **SMALL).parent
    a = synthetic.generate(tmp_path / "a", seed=3, style=synthetic.GENTLE, task=task, **SMALL).parent
    b = synthetic.generate(tmp_path / "b", seed=3, style=synthetic.GENTLE, task=task, **SMALL).parent
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(_files(a, "labels"), _files(b, "labels")))
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(_files(a, "images"), _files(detect, "images")))
    assert len(_rows(a)) == len(_rows(detect)) > 0
    assert _rows(a) != _rows(detect)


def _poly_box(xy: np.ndarray) -> np.ndarray:
    return np.array([*xy.min(0), *xy.max(0)])


def test_segment_polygons_outline_the_boxes(tmp_path):
    n = SMALL["imgsz"]
    seg = synthetic.generate(tmp_path / "seg", seed=0, style=synthetic.GENTLE, task="segment", **SMALL).parent
    det = synthetic.generate(tmp_path / "det", seed=0, style=synthetic.GENTLE, **SMALL).parent
    for row, box in zip(_rows(seg), _rows(det)):
        assert row[0] == box[0] and len(row) % 2 == 1 and len(row) >= 7  # class, then >= 3 points
        xy = np.array(row[1:]).reshape(-1, 2)
        assert xy.min() >= 0 and xy.max() <= 1
        cx, cy, w, h = box[1:]
        # the outline's pixel corners span the box's pixels (the last pixel's corner is 1 px short of its far edge)
        expected = np.array([cx - w / 2, cy - h / 2, cx + w / 2 - 1 / n, cy + h / 2 - 1 / n])
        np.testing.assert_allclose(_poly_box(xy), expected, atol=1e-5)


def test_obb_labels_are_the_outlines_minimum_rotated_rectangles(tmp_path):
    import cv2

    n = SMALL["imgsz"]
    obb = synthetic.generate(tmp_path / "obb", seed=0, style=synthetic.GENTLE, task="obb", **SMALL).parent
    seg = synthetic.generate(tmp_path / "seg", seed=0, style=synthetic.GENTLE, task="segment", **SMALL).parent
    rotated_smaller = 0
    for rbox, poly in zip(_rows(obb), _rows(seg)):
        assert len(rbox) == 9 and rbox[0] == poly[0] and min(rbox[1:]) >= 0 and max(rbox[1:]) <= 1
        corners = np.array(rbox[1:]).reshape(4, 2) * n
        outline = (np.array(poly[1:]).reshape(-1, 2) * n).astype(np.float32)
        area, aabb = cv2.contourArea(corners.astype(np.float32)), np.prod(np.ptp(outline, 0))
        assert cv2.contourArea(outline) <= area + 1e-3 and area <= aabb + 1e-3  # min-area: never above the aabb
        rotated_smaller += area < 0.95 * aabb
    assert rotated_smaller > 0  # rotated squares and ovals: the rotated box is tighter than the upright one


def test_pose_keypoints_are_the_extreme_points(tmp_path):
    pose = synthetic.generate(tmp_path / "pose", seed=0, style=synthetic.GENTLE, task="pose", **SMALL)
    raw = yaml.safe_load(pose.read_text())
    assert raw["kpt_shape"] == [4, 3] and raw["flip_idx"] == [0, 3, 2, 1]
    rows = _rows(pose.parent)
    assert all(len(r) == 5 + 4 * 3 for r in rows)
    visibility = set()
    for r in rows:
        cx, cy, w, h = r[1:5]
        k = np.array(r[5:]).reshape(4, 3)
        assert (k[:, 0] >= cx - w / 2).all() and (k[:, 0] <= cx + w / 2).all()
        assert (k[:, 1] >= cy - h / 2).all() and (k[:, 1] <= cy + h / 2).all()
        assert k[0, 1] == k[:, 1].min() and k[1, 0] == k[:, 0].max()  # topmost, rightmost
        assert k[2, 1] == k[:, 1].max() and k[3, 0] == k[:, 0].min()  # bottommost, leftmost
        visibility |= set(k[:, 2])
    assert visibility == {1.0, 2.0}  # some points hidden under later objects, most visible


@pytest.mark.parametrize("task", ["segment", "pose", "obb"])
def test_task_data_loads_as_ultralytics_reads_the_task(tmp_path, task):
    from ultralytics.data import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(synthetic.generate(tmp_path / task, style=synthetic.GENTLE, task=task, **SMALL)))
    labels = YOLODataset(img_path=data["train"], data=data, task=task, imgsz=SMALL["imgsz"], augment=False).labels
    assert len(labels) == SMALL["n_train"]
    for lb in labels:
        n = len(lb["bboxes"])
        assert n > 0 and len(lb["cls"]) == n
        if task == "pose":
            assert lb["keypoints"].shape == (n, 4, 3)
        else:
            assert len(lb["segments"]) == n


def test_task_presets_are_cached_datasets_of_their_names(tmp_path, monkeypatch):
    from yolodistill.data import registry

    for name, task in (("shapes-seg", "segment"), ("shapes-pose", "pose"), ("shapes-obb", "obb")):
        assert registry()[name] == f"builtin:{name}" and synthetic._PRESETS[name]["task"] == task
        assert {k: v for k, v in synthetic._PRESETS[name].items() if k != "task"} == synthetic._PRESETS["shapes"]
        monkeypatch.setitem(synthetic._PRESETS, name, {"seed": 0, "style": synthetic.GENTLE, "task": task, **SMALL})
        first = synthetic.builtin(name, cache_dir=tmp_path)
        mtime = first.stat().st_mtime_ns
        assert synthetic.builtin(name, cache_dir=tmp_path) == first and first.stat().st_mtime_ns == mtime
        assert first.parent.name.startswith(f"{name}-v{synthetic.GENERATOR_VERSION}-")
        assert ("kpt_shape" in yaml.safe_load(first.read_text())) == (task == "pose")
