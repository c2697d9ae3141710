"""The CLI: help and version, key parsing, and every kind of bad input failing fast with one line and no run dir."""

from __future__ import annotations

import pytest
import torch
from conftest import IMGSZ, make_teacher, save_checkpoint
from ultralytics.nn.tasks import SegmentationModel

from yolodistill import __version__
from yolodistill.cli import entrypoint, parse
from yolodistill.data import registry, resolve_data
from yolodistill.recipes import available, load_recipe
from yolodistill.utils import DistillError


def test_help_and_version(capsys):
    assert entrypoint(["help"]) == 0
    out = capsys.readouterr().out
    assert "yolodistill train" in out and "head_kd" in out and "cwd_mimic" in out and "shapes" in out
    assert entrypoint(["--version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_parse_types_values_like_yolo():
    assert parse(["epochs=3", "cwd=0.5", "teacher_layers=[15,18,21]", "name=x", "resume"]) == {
        "epochs": 3,
        "cwd": 0.5,
        "teacher_layers": [15, 18, 21],
        "name": "x",
        "resume": True,
    }


def test_bundled_recipes_and_overrides(tmp_path):
    assert {"cwd", "mimic", "cwd_mimic", "head_kd", "head_pkd", "cross_kd", "lowres"} <= set(available())
    r = load_recipe("cwd", {"cwd_tau": 4})
    assert r.cwd > 0 and r.mimic == 0 and r.cwd_tau == 4.0
    mine = tmp_path / "mine.yaml"
    mine.write_text("mimic: 3\nadapter: conv_bn\n")
    r = load_recipe(mine)
    assert r.mimic == 3.0 and r.cwd == 0 and r.adapter == "conv_bn"


def test_datasets_yaml_names(monkeypatch, tmp_path):
    assert {"coco", "VOC", "VisDrone", "synthetic"} <= set(registry())
    assert resolve_data("VOC") == "VOC.yaml"
    assert resolve_data("my/data.yaml") == "my/data.yaml"
    monkeypatch.setattr("yolodistill.synthetic.builtin", lambda name: tmp_path / f"{name}.yaml")
    assert resolve_data("synthetic") == str(tmp_path / "synthetic.yaml")
    # every built-in name is a preset the generator knows (a typo would fail only at first use)
    from yolodistill.synthetic import _PRESETS

    builtins = {v.removeprefix("builtin:") for v in registry().values() if v.startswith("builtin:")}
    assert {"lookalike", "shapes", "synthetic"} <= builtins <= set(_PRESETS)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, data_yaml):
    d = tmp_path_factory.mktemp("bad")
    (d / "garbage.pt").write_bytes(b"\x00not a checkpoint at all" * 10)
    (d / "image.pt").write_bytes((data_yaml.parent / "images" / "val").glob("*").__next__().read_bytes())
    (d / "broken.yaml").write_text("backbone: [[-1, 1, NoSuchModule, [64]]]\nhead: []\nnc: 6\n")
    seg = SegmentationModel("yolov8n-seg.yaml", nc=6, verbose=False)
    seg.names = dict(enumerate("abcdef"))
    save_checkpoint(seg, d / "seg.pt")
    make_teacher(d / "other_names.pt", cfg="yolov8n.yaml", names=("cat", "dog"))
    (d / "no_images").mkdir()
    (d / "no_images" / "notes.txt").write_text("not an image\n")
    (d / "broken_images").mkdir()
    (d / "broken_images" / "a.jpg").write_bytes(b"\xff\xd8 truncated")
    return d


CASES = {
    "missing teacher": ({"teacher": "{bad}/nope.pt"}, "not found"),
    "unreadable teacher": ({"teacher": "{bad}/garbage.pt"}, "not a readable Ultralytics checkpoint"),
    "not a checkpoint": ({"teacher": "{bad}/image.pt"}, "not a readable Ultralytics checkpoint"),
    "segment teacher, detect data": ({"teacher": "{bad}/seg.pt"}, "has box labels only"),
    "teacher lacks data classes": ({"teacher": "{bad}/other_names.pt"}, "has no class 'disc', 'ring'"),
    "student yaml missing": ({"student": "yolov8q.yaml"}, "student 'yolov8q.yaml' not found or invalid"),
    "student yaml invalid": ({"student": "{bad}/broken.yaml"}, "not found or invalid"),
    "unknown recipe": ({"recipe": "cwdd"}, "unknown recipe 'cwdd'"),
    "unknown recipe key in file": ({"recipe": "{bad}/typo_recipe.yaml"}, "did you mean 'mimic'"),
    "layer out of range": ({"teacher_layers": [15, 18, 99]}, "teacher layer 99 out of range"),
    "tap counts differ": ({"teacher_layers": [15, 18]}, "2 teacher taps"),
    "data missing": ({"data": "{bad}/nodata.yaml"}, "could not be loaded"),
    "misspelled argument": ({"epochz": 1}, "unknown argument 'epochz': did you mean 'epochs'"),
    "wrong type": ({"epochs": "many"}, "epochs"),
    "teacher_imgsz < imgsz": ({"teacher_imgsz": 32}, "smaller than imgsz"),
    "not a stride multiple": ({"teacher_imgsz": 100}, "not a multiple of the largest stride 32"),
    "negative weight": ({"cwd": -1}, "must be >= 0"),
    "unlabeled missing": ({"unlabeled": "{bad}/nope"}, "unlabeled '{bad}/nope' not found: pass a folder of images"),
    "unlabeled without images": ({"unlabeled": "{bad}/no_images"}, "has no images"),
    "unlabeled unreadable": ({"unlabeled": "{bad}/broken_images"}, "1 of 1 images cannot be read"),
    "unlabeled_ratio alone": ({"unlabeled_ratio": 2}, "unlabeled_ratio=2 given, but no unlabeled images"),
    "assistant at one resolution": ({"assistant": True}, "assistant= is for a lower-resolution student"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_with_one_line_and_no_run(case, bad_files, data_yaml, teacher_pt, tmp_path, capsys):
    (bad_files / "typo_recipe.yaml").write_text("cwd: 1\nmimik: 1\n")
    changes, message = CASES[case]
    args = {"teacher": str(teacher_pt), "student": "yolov8n.yaml", "data": str(data_yaml), "epochs": 1}
    args.update(imgsz=IMGSZ, device="cpu", project=str(tmp_path / "runs"), name="bad")
    args.update({k: v.format(bad=bad_files) if isinstance(v, str) else v for k, v in changes.items()})
    assert entrypoint(["train", *(f"{k}={v}" for k, v in args.items())]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("yolodistill: error: ") and "\n" not in err and "Traceback" not in err
    assert message.format(bad=bad_files) in err
    assert not (tmp_path / "runs").exists()


def test_unknown_command(capsys):
    assert entrypoint(["trian"]) == 2
    assert "did you mean 'train'" in capsys.readouterr().err


def test_api_raises_distill_error_not_exit(data_yaml, tmp_path):
    from yolodistill import distill

    with pytest.raises(DistillError, match="not found"):
        distill(tmp_path / "nope.pt", "yolov8n.yaml", data_yaml, project=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_teacher_loads_frozen(teacher_pt):
    from yolodistill.teacher import load_teacher

    t = load_teacher(teacher_pt)
    assert not t.training and not any(p.requires_grad for p in t.parameters())
    assert next(t.parameters()).dtype == torch.float32
