"""Training with the distillation losses: recipes that cannot work refused in one line, one epoch with every loss,
and the same-seed start shared with plain Ultralytics."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from conftest import distil_step, save_checkpoint, train_args
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn.tasks import DetectionModel

from yolodistill import DistillationTrainer, DistillError


def _trainer(data_yaml, teacher_pt, project, **kw):
    return DistillationTrainer(
        overrides={
            "teacher": str(teacher_pt),
            "model": "yolov8n.yaml",
            "data": str(data_yaml),
            **train_args(project, **kw),
        }
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"recipe": "cwd", "cwd": 0}, "no loss weight > 0"),
        ({"ld": 0.25, "imgsz": 64, "teacher_imgsz": 128}, "ld needs teacher_imgsz == imgsz"),
        ({"recipe": "lowres", "box_kd": 1, "imgsz": 64, "teacher_imgsz": 128}, "box_kd needs teacher_imgsz == imgsz"),
        ({"schedule": "cosin"}, "unknown schedule.*'cosin': did you mean 'cosine'"),
        ({"cls_kd_weighted": "maybe"}, "flags true/false"),
        ({"recipe": "cwd", "feature_weighted": True}, "weights mimic and pkd, but both are 0"),
    ],
)
def test_recipes_that_cannot_work_are_refused_in_one_line(workdir, data_yaml, teacher_pt, overrides, message):
    with pytest.raises(DistillError, match=message) as e:
        _trainer(data_yaml, teacher_pt, workdir / "runs", name="refused", **overrides)
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_one_epoch_with_every_new_loss(workdir, data_yaml, teacher_pt):
    keys = dict(recipe="head_pkd", cls_kd_weighted=True, feature_weighted=True, schedule="cosine", box_kd=1.0)
    keys.update(cross_kd=1.0)
    keys.update(off_close_mosaic=True, close_mosaic=1)
    trainer = _trainer(data_yaml, teacher_pt, workdir / "runs", name="newlosses", epochs=2, **keys)
    factors = []
    trainer.add_callback("on_train_epoch_end", lambda t: factors.append(t.distiller.factor))
    trainer.train()
    with open(trainer.csv) as f:
        rows = list(csv.DictReader(f))
    for name in ("pkd", "cls_kd", "ld", "box_kd", "cross_kd"):
        values = [float(r[f"train/{name}_loss"]) for r in rows]
        assert values[0] > 0 and math.isfinite(values[0])
        assert values[1] == 0.0  # distillation off in the close_mosaic epoch
    assert factors == [1.0, 0.0]
    teacher_calls = []
    trainer.distiller.teacher.model[0].register_forward_hook(lambda *a: teacher_calls.append(1))
    x = torch.rand(2, 3, 64, 64)
    trainer.distiller.factor = 0.0
    distil_step(trainer.distiller, trainer.model, x, backward=False)
    assert not teacher_calls  # an epoch with distillation off never runs the teacher


@pytest.mark.slow
@pytest.mark.parametrize("pretrained", [False, True])
def test_same_seed_same_start_as_plain_ultralytics(workdir, data_yaml, teacher_pt, pretrained):
    """The adapters are built off Ultralytics' seeded RNG: same student weights and same first batch as `yolo train`.
    A pretrained student with other classes than the data's (as `yolov8n.pt` has COCO's) starts as `yolo train
    model=x.pt` starts it: its head rebuilt for the data's classes, the other weights transferred."""
    seen = {}
    model = "yolov8n.yaml"
    if pretrained:
        torch.manual_seed(7)
        other = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
        other.names = {0: "cat", 1: "dog", 2: "bird"}
        model = str(save_checkpoint(other, workdir / "pretrained_3_classes.pt"))

    def capture(name):
        def on_train_start(t):
            seen[name] = {"state": {k: v.clone() for k, v in t.model.state_dict().items()}}
            preprocess = t.preprocess_batch

            def first_batch(batch):
                batch = preprocess(batch)
                seen[name].setdefault("img", batch["img"].clone())
                return batch

            t.preprocess_batch = first_batch

        return on_train_start

    common = dict(model=model, data=str(data_yaml), **train_args(workdir / "runs", seed=3))
    # the pretrained case with the default recipe: class KD needs the rebuilt head's classes
    extra = {"teacher": str(teacher_pt), "recipe": "head_kd" if pretrained else "cwd_mimic"}
    # Ultralytics seeds in the trainer's constructor, so each trainer is built right before its run, as in a new process
    for name, cls, kw in (("plain", DetectionTrainer, {}), ("distilled", DistillationTrainer, extra)):
        trainer = cls(overrides={**common, "name": f"seed-{name}-{pretrained}", **kw})
        trainer.add_callback("on_train_start", capture(name))
        trainer.train()
    a, b = seen["plain"], seen["distilled"]
    assert a["state"].keys() == b["state"].keys()
    assert [k for k in a["state"] if not torch.equal(a["state"][k], b["state"][k])] == []
    assert torch.equal(a["img"], b["img"])
    if pretrained:  # the weights came from the checkpoint, and the class predictors have the data's 6 outputs
        torch.testing.assert_close(b["state"]["model.0.conv.weight"], other.state_dict()["model.0.conv.weight"].float())
        assert b["state"]["model.22.cv3.0.2.weight"].shape[0] == 6
