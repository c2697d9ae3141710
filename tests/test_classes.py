"""A teacher trained on more classes than the data (a COCO model for a person/car/bike student) distils through its
scores for the data's classes, picked by name in the data's order; one missing name is refused in one line."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from conftest import distil_step, make_teacher, save_checkpoint, train_args
from ultralytics.nn.tasks import DetectionModel

from yolodistill import DistillationTrainer, DistillError
from yolodistill.distiller import head_outputs
from yolodistill.losses import ClassKDLoss, LDLoss
from yolodistill.synthetic import CLASS_NAMES

SUPERSET = ("cat", *reversed(CLASS_NAMES), "dog")  # the data's 6 classes, reordered, between two others


@pytest.fixture(scope="module")
def superset_pt(workdir):
    """Random weights, but confident about the two classes the data lacks: read by mistake, they would dominate the
    anchor weights of LD and box KD."""
    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=len(SUPERSET), verbose=False)
    model.names = dict(enumerate(SUPERSET))
    for branch in model.model[-1].cv3:
        branch[-1].bias.data[[0, len(SUPERSET) - 1]] = 3.0
    return save_checkpoint(model, workdir / "teacher_superset.pt")


def _trainer(data_yaml, teacher, project, **kw):
    args = {"teacher": str(teacher), "model": "yolov8n.yaml", "data": str(data_yaml), **train_args(project, **kw)}
    return DistillationTrainer(overrides=args)


def test_teacher_channels_are_the_data_classes_by_name(workdir, data_yaml, superset_pt):
    trainer = _trainer(data_yaml, superset_pt, workdir / "runs", name="superset-unit", recipe="head_kd")  # class KD too
    assert trainer.plan.teacher_classes == [SUPERSET.index(n) for n in CLASS_NAMES] == [6, 5, 4, 3, 2, 1]
    distiller, student = trainer.distiller, trainer.get_model("yolov8n.yaml", verbose=False)
    student.args = trainer.args  # the detection criterion reads its gains from here
    x = torch.rand(2, 3, 64, 64)
    _, items = distil_step(distiller, student, x, backward=False)
    with torch.no_grad():
        t = head_outputs(distiller.teacher.predict(x))
        s = head_outputs(student.predict(x))
    idx = torch.tensor(trainer.plan.teacher_classes)
    t_scores = t["scores"][:, idx]
    r = trainer.plan.recipe
    expected_cls = r.cls_kd * ClassKDLoss(r.cls_kd_tau)(s["scores"], t_scores)
    expected_ld = r.ld * LDLoss(r.ld_tau)(s["boxes"], t["boxes"], t_scores)  # LD's anchor weights: data classes only
    torch.testing.assert_close(items["cls_kd_loss"], expected_cls)
    torch.testing.assert_close(items["ld_loss"], expected_ld)
    assert not torch.allclose(expected_ld, r.ld * LDLoss(r.ld_tau)(s["boxes"], t["boxes"], t["scores"]))


@pytest.mark.slow
def test_a_superset_teacher_trains_every_head_loss(workdir, data_yaml, superset_pt):
    keys = dict(recipe="head_kd", box_kd=1, box_kd_weights="bckd", cross_kd=1, cls_kd_weighted=True, cls_kd_beta=1)
    trainer = _trainer(data_yaml, superset_pt, workdir / "runs", name="superset", **keys)
    trainer.train()
    with open(trainer.csv) as f:
        row = next(csv.DictReader(f))
    for name in ("cls_kd", "ld", "box_kd", "cross_kd"):
        value = float(row[f"train/{name}_loss"])
        assert value > 0 and math.isfinite(value)


def test_a_teacher_missing_data_classes_is_refused_naming_them(workdir, data_yaml):
    teacher = make_teacher(workdir / "teacher_missing.pt", cfg="yolov8n.yaml", names=(*CLASS_NAMES[:4], "cat"))
    with pytest.raises(DistillError, match=r"has no class 'frame', 'oval' \(2 of the data's 6 missing\)") as e:
        _trainer(data_yaml, teacher, workdir / "runs", name="missing")
    assert "\n" not in str(e.value)
    assert not (workdir / "runs" / "missing").exists()
