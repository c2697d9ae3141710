"""Export: Ultralytics' exporter at the student's own size, and verification of the exported file against PyTorch."""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from pathlib import Path

import onnx
import pytest
import torch
from conftest import IMGSZ, save_checkpoint, train_args
from ultralytics.engine.model import Model
from ultralytics.nn.tasks import DetectionModel

from yolodistill import distill, exporter
from yolodistill.cli import entrypoint
from yolodistill.exporter import export
from yolodistill.synthetic import CLASS_NAMES
from yolodistill.utils import DistillError


def _graph(path: Path) -> onnx.GraphProto:
    return onnx.load(str(path)).graph


def _ops(path: Path) -> Counter:
    return Counter(node.op_type for node in _graph(path).node)


def _shape(value: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value for d in value.type.tensor_type.shape.dim]


def _input_hw(path: Path) -> list[int]:
    return _shape(_graph(path).input[0])[2:]


def _plain_student(path: Path, seed: int = 0) -> Path:
    """A yolov8n student that never met a teacher, saved like Ultralytics' trainer saves one."""
    torch.manual_seed(seed)
    model = DetectionModel("yolov8n.yaml", nc=len(CLASS_NAMES), verbose=False)
    model.names = dict(enumerate(CLASS_NAMES))
    return save_checkpoint(model, path)


@pytest.fixture(scope="module")
def distilled_onnx(distilled_run, tmp_path_factory):
    """ONNX export (verified) of a copy of the 1-epoch distilled student, so exports never land in the shared run."""
    pt = shutil.copy(distilled_run / "weights/best.pt", tmp_path_factory.mktemp("export") / "best.pt")
    return export(pt, format="onnx")


@pytest.mark.slow
def test_distilled_onnx_verifies(distilled_onnx):
    r = distilled_onnx
    assert r.path.suffix == ".onnx" and r.path.is_file()
    assert _input_hw(r.path) == [IMGSZ, IMGSZ]  # the checkpoint's training size, not Ultralytics' 640
    assert r.passed and r.tolerance == exporter.TOL_FP32 and 0 <= r.max_abs_diff <= r.tolerance
    assert r.boxes > 0 and r.agreement == 1.0  # fp32 differences (~1e-6) flip no box at IoU >= 0.95
    assert r.latency_ms_torch > 0 and r.latency_ms_exported > 0


@pytest.mark.slow
def test_export_contains_only_the_student(distilled_onnx, distilled_run, tmp_path):
    assert "distill" in torch.load(distilled_run / "weights/best.pt", map_location="cpu", weights_only=False)
    plain = export(_plain_student(tmp_path / "plain.pt"), format="onnx", verify=False).path
    assert _ops(distilled_onnx.path) == _ops(plain)  # initializer counts may differ: onnxslim merges equal weights
    assert [_shape(o) for o in _graph(distilled_onnx.path).output] == [_shape(o) for o in _graph(plain).output]


@pytest.mark.slow
def test_lowres_student_exports_at_its_size(tmp_path, data_yaml, teacher_pt, caplog):
    best = distill(teacher_pt, "yolov8n.yaml", data_yaml, teacher_imgsz=128, **train_args(tmp_path, name="lr")).best
    images = str(Path(data_yaml).parent / "images" / "val" / "*.jpg")
    r = export(best, format="onnx", images=images)
    assert _input_hw(r.path) == [IMGSZ, IMGSZ]
    assert r.passed
    report = caplog.text[caplog.text.index("verify:") :]
    assert "max |diff|" in report and "agreeing" in report and "ms/image" in report


def test_images_argument(tmp_path, data_yaml):
    pt = _plain_student(tmp_path / "plain.pt")
    one = next((Path(data_yaml).parent / "images" / "val").glob("*.jpg"))
    assert export(pt, format="onnx", images=one).passed  # a single file
    (tmp_path / "empty").mkdir()
    with pytest.raises(DistillError, match="images=") as e:
        export(pt, format="onnx", images=tmp_path / "empty")
    assert "\n" not in str(e.value)


def test_verify_false_skips_verification(tmp_path, monkeypatch):
    monkeypatch.setattr(exporter, "_verify", lambda *a, **k: pytest.fail("verified despite verify=False"))
    r = export(_plain_student(tmp_path / "plain.pt"), format="onnx", verify=False)
    assert r.path.is_file() and r.passed is None and r.max_abs_diff is None


@pytest.mark.slow
def test_wrong_graph_fails_verification_and_keeps_the_file(distilled_onnx, tmp_path, monkeypatch):
    other = export(_plain_student(tmp_path / "other.pt", seed=1), format="onnx", verify=False).path
    monkeypatch.setattr(Model, "export", lambda self, **kw: str(other))  # the "exporter" wrote another model
    with pytest.raises(DistillError, match="tolerance") as e:
        export(distilled_onnx.path.with_suffix(".pt"), format="onnx")
    assert str(other) in str(e.value) and "\n" not in str(e.value) and other.is_file()


def test_tensorrt_missing_is_one_line_before_ultralytics(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt raises ImportError
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(Model, "export", lambda self, **kw: pytest.fail("Ultralytics started"))
    pt = _plain_student(tmp_path / "plain.pt")
    assert entrypoint(["export", f"model={pt}", "format=engine"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tensorrt" in err and "CUDA" in err
