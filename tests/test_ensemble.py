"""An ensemble of teachers (`teacher=[a.pt,b.pt]`): head outputs averaged as probabilities (float64 reference), one
teacher twice is that teacher, two distil their average, what cannot be averaged is one line, and a run keeps them."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import distil_step, make_teacher, train_args
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import DEFAULT_CFG

from yolodistill import DistillationTrainer, DistillError
from yolodistill.cli import entrypoint
from yolodistill.distiller import Distiller, head_outputs
from yolodistill.ensemble import mean_boxes, mean_scores
from yolodistill.recipes import load_recipe
from yolodistill.taps import detect_inputs
from yolodistill.teacher import freeze
from yolodistill.trainer import CKPT_KEY


def test_scores_and_boxes_average_as_probabilities():
    torch.manual_seed(0)
    scores = [torch.randn(2, 3, 7) * 3 for _ in range(3)]
    boxes = [torch.randn(2, 4 * 16, 7) * 2 for _ in range(3)]
    ref = torch.stack([torch.sigmoid(s.double()) for s in scores]).mean(0)
    torch.testing.assert_close(mean_scores(scores).double().sigmoid(), ref, rtol=1e-5, atol=1e-6)
    ref = torch.stack([b.double().view(2, 4, 16, 7).softmax(2) for b in boxes]).mean(0)
    torch.testing.assert_close(mean_boxes(boxes, 16).double().view(2, 4, 16, 7).softmax(2), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mean_scores(scores[:1]), scores[0], rtol=1e-4, atol=1e-4)  # one member: itself


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    a = freeze(DetectionModel("yolov8s.yaml", nc=6, verbose=False))
    b = DetectionModel("yolov8s.yaml", nc=6, verbose=False)
    for cls, box in zip(b.model[-1].cv3, b.model[-1].cv2):  # random heads are alike: make this one sure of class 0
        cls[-1].bias.data[0] = 3.0
        box[-1].bias.data.normal_(0, 2)
    b = freeze(b)
    student = DetectionModel("yolov8n.yaml", nc=6, verbose=False)
    student.args = DEFAULT_CFG
    return a, b, student


def _distiller(teacher, members=()):
    layers = detect_inputs(teacher)
    return Distiller(teacher, load_recipe("head_kd"), layers, layers, [128, 256, 512], [64, 128, 256], members=members)


def test_one_teacher_twice_is_that_teacher(models):
    a, _, student = models
    x = torch.rand(2, 3, 64, 64)
    alone, _ = distil_step(_distiller(a), student, x, backward=False)
    twice, _ = distil_step(_distiller(a, [(copy.deepcopy(a), None)]), student, x, backward=False)
    torch.testing.assert_close(twice, alone, rtol=1e-4, atol=1e-5)


def test_two_teachers_distil_their_average(models):
    a, b, student = models
    x = torch.rand(2, 3, 64, 64)
    distiller = _distiller(a, [(b, None)])
    terms, _ = distil_step(distiller, student, x, backward=False)
    with torch.no_grad():
        ta, tb, s = (head_outputs(m.predict(x)) for m in (a, b, student))
    t_scores, t_boxes = mean_scores([ta["scores"], tb["scores"]]), mean_boxes([ta["boxes"], tb["boxes"]], 16)
    w = distiller.weights
    expected = torch.stack([
        w["cls_kd"] * distiller.losses["cls_kd"](s_scores=s["scores"], t_scores=t_scores),
        w["ld"] * distiller.losses["ld"](s_boxes=s["boxes"], t_boxes=t_boxes, t_scores=t_scores),
    ])  # fmt: skip
    torch.testing.assert_close(terms, expected)
    alone, _ = distil_step(_distiller(a), student, x, backward=False)
    assert not torch.allclose(terms, alone)  # the second teacher counts


@pytest.fixture(scope="module")
def teachers(workdir):
    return (make_teacher(workdir / "ens_a.pt", cfg="yolov8n.yaml", seed=1),
            make_teacher(workdir / "ens_b.pt", cfg="yolo11n.yaml", seed=2),
            make_teacher(workdir / "ens_e2e.pt", cfg="yolo26n.yaml", seed=3))  # fmt: skip


@pytest.mark.parametrize(
    ("which", "extra", "message"),
    [
        ((0, 1), ["recipe=cwd_mimic"], "an ensemble of teachers distils head outputs (cls_kd, ld, box_kd), but the "
                                        "recipe also has cwd, mimic: set cwd=0, mimic=0"),
        ((0, 2), ["recipe=head_kd", "ld=0"], "cannot be averaged with"),
    ],
)  # fmt: skip
def test_what_cannot_be_averaged_is_one_line(which, extra, message, teachers, data_yaml, tmp_path, capsys):
    listed = "[" + ",".join(str(teachers[i]) for i in which) + "]"
    argv = ["train", f"teacher={listed}", "student=yolov8n.yaml", f"data={data_yaml}", "epochs=1", "imgsz=64"]
    assert entrypoint([*argv, f"project={tmp_path / 'runs'}", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_run_of_two_teachers_keeps_both(teachers, data_yaml, tmp_path):
    pair = [str(teachers[0]), str(teachers[1])]  # YOLOv8 and YOLO11: same strides and box bins
    args = train_args(tmp_path / "runs", name="ens")
    trainer = DistillationTrainer(overrides={"teacher": pair, "model": "yolov8n.yaml", "data": str(data_yaml), **args})
    assert trainer.plan.member_paths == pair[1:] and len(trainer.distiller.members) == 1
    trainer.train()
    ckpt = torch.load(trainer.last, map_location="cpu", weights_only=False)
    assert ckpt[CKPT_KEY]["teacher"] == pair and len(ckpt[CKPT_KEY]["teacher_sha256"]) == 2
    ckpt["epoch"], ckpt["train_args"]["epochs"] = 0, 2  # as after the first of two epochs
    midway = tmp_path / "midway.pt"
    torch.save(ckpt, midway)
    resumed = DistillationTrainer(overrides={"resume": str(midway)})
    assert [resumed.plan.teacher_path, *resumed.plan.member_paths] == pair
    with pytest.raises(DistillError, match="on resume, but the run's is"):
        DistillationTrainer(overrides={"resume": str(midway), "teacher": pair[0]})
