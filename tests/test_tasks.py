"""Segment, pose and OBB students: the trainer picked by the teacher's task, the task checks, the task losses fed from
the task heads, and (slow) one-epoch runs whose best.pt is a plain Ultralytics model of its task that exports with
verified parity."""

from __future__ import annotations

import csv
import pickletools
import shutil
import subprocess
import sys
import zipfile
from types import SimpleNamespace

import pytest
import torch
from conftest import IMGSZ, distil_step, make_teacher, save_checkpoint, train_args
from ultralytics.models.yolo.obb import OBBTrainer
from ultralytics.models.yolo.pose import PoseTrainer
from ultralytics.models.yolo.segment import SegmentationTrainer
from ultralytics.nn.tasks import ClassificationModel
from ultralytics.utils import DEFAULT_CFG
from ultralytics.utils.ops import xywh2xyxy

from yolodistill import DistillError, SegmentDistillationTrainer, distill, export
from yolodistill.checks import DISTILL_ARGS, MODELS, preflight
from yolodistill.cli import entrypoint
from yolodistill.distiller import Distiller, head_outputs, keypoint_offsets, mask_boxes
from yolodistill.recipes import SCRATCH_RECIPE, load_recipe
from yolodistill.synthetic import GENTLE, KPT_SHAPE
from yolodistill.trainer import CKPT_KEY, TRAINERS, trainer_class

# task → (model yaml suffix, its loss, the validator's metric suffix of its own output, what predict gives per image)
TASKS = {
    "segment": ("-seg", "mask_kd", "(M)", "masks"),
    "pose": ("-pose", "kpt_kd", "(P)", "keypoints"),
    "obb": ("-obb", "angle_kd", "(B)", "obb"),
}
NAMES = GENTLE.classes  # of the task data and teachers (conftest's task_data, task_teachers)


def student_yaml(task: str) -> str:
    return f"yolov8n{TASKS[task][0]}.yaml"


def test_the_trainer_is_ultralytics_trainer_of_the_teachers_task(task_teachers, teacher_pt, tmp_path):
    assert trainer_class({"teacher": str(teacher_pt)}) is TRAINERS["detect"]
    for task, base in (("segment", SegmentationTrainer), ("pose", PoseTrainer), ("obb", OBBTrainer)):
        cls = trainer_class({"teacher": str(task_teachers[task])})
        assert cls is TRAINERS[task] and issubclass(cls, base) and task == cls.TASK
        # on resume, the task of the checkpoint being resumed (its train_args, as Ultralytics saves them)
        last = tmp_path / f"{task}-last.pt"
        torch.save({"train_args": {"task": task}}, last)
        assert trainer_class({"resume": str(last)}) is cls


def test_an_ensemble_of_task_teachers_is_of_one_task_and_distils_its_detection_part(
    task_teachers, task_data, teacher_pt, workdir, tmp_path, capsys
):
    other = make_teacher(workdir / "teacher-segment-2.pt", "yolov8s-seg.yaml", NAMES, seed=1)
    pair = [str(task_teachers["segment"]), str(other)]
    assert trainer_class({"teacher": pair}) is TRAINERS["segment"]
    seg = {"student": student_yaml("segment"), "data": task_data["segment"]}
    err = _cli_error(capsys, tmp_path, teacher=f"[{pair[0]},{teacher_pt}]", **seg)
    assert "is a detect model but teacher" in err and "an ensemble is of one task" in err
    err = _cli_error(capsys, tmp_path, teacher=f"[{pair[0]},{pair[1]}]", mask_kd=1, **seg)
    assert "an ensemble of teachers distils head outputs" in err and "mask_kd" in err
    plan = _plan("segment", pair, task_data["segment"], student_yaml("segment"), recipe="head_kd")
    terms, items = distil_step(Distiller.from_plan(plan), _student("segment"), torch.rand(2, 3, IMGSZ, IMGSZ))
    assert set(items) == {"cls_kd_loss", "ld_loss"} and torch.isfinite(terms).all() and (terms > 0).all()


def test_arguments_are_checked_before_the_teacher_is_read(tmp_path):
    with pytest.raises(DistillError, match="unknown argument 'epochz'"):
        trainer_class({"teacher": str(tmp_path / "nope.pt"), "epochz": 1})
    with pytest.raises(DistillError, match="not found"):
        trainer_class({"teacher": str(tmp_path / "nope.pt"), "epochs": 1})


def _cli_error(capsys, tmp_path, **args) -> str:
    args = {"epochs": 1, "imgsz": IMGSZ, "device": "cpu", "project": str(tmp_path / "runs"), **args}
    assert entrypoint(["train", *(f"{k}={v}" for k, v in args.items())]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("yolodistill: error: ") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()
    return err


# case → (teacher task, student task, data task, extra args, message)
MISMATCHES = {
    "detect student of a segment teacher": ("segment", "detect", "segment", {}, "is a detect model but teacher"),
    "segment student of a detect teacher": ("detect", "segment", "detect", {}, "is a segment model but teacher"),
    "pose data for a segment teacher": ("segment", "segment", "pose", {}, "has kpt_shape [4, 3] (a pose dataset)"),
    "segment data for a pose teacher": ("pose", "pose", "segment", {}, "has no kpt_shape (not a pose dataset)"),
    "box labels for a segment teacher": ("segment", "segment", "detect", {}, "has box labels only (cls cx cy w h)"),
    "box labels for an obb teacher": ("obb", "obb", "detect", {}, "use obb data (rotated boxes"),
    "mask_kd on a detector": ("detect", "detect", "detect", {"mask_kd": 1}, "mask_kd needs segment models"),
    "proto_kd on a detector": ("detect", "detect", "detect", {"proto_kd": 1}, "proto_kd needs segment models"),
    "kpt_kd on a segmenter": ("segment", "segment", "segment", {"kpt_kd": 1}, "kpt_kd needs pose models"),
    "angle_kd on pose": ("pose", "pose", "pose", {"angle_kd": 1}, "angle_kd needs obb models"),
    "kpt_kd at low resolution": ("pose", "pose", "pose", {"kpt_kd": 1, "teacher_imgsz": 128}, "keypoints on one grid"),
    "task= not the teacher's": ("segment", "segment", "segment", {"task": "pose"}, "task=pose was given"),
    "mask_kd_topk 0": ("segment", "segment", "segment", {"mask_kd": 1, "mask_kd_topk": 0}, "mask_kd_topk=0"),
}


@pytest.mark.parametrize("case", list(MISMATCHES))
def test_task_mismatch_is_one_line_and_no_run(case, task_teachers, task_data, teacher_pt, data_yaml, tmp_path, capsys):
    t_task, s_task, d_task, extra, message = MISMATCHES[case]
    teacher = teacher_pt if t_task == "detect" else task_teachers[t_task]
    data = task_data[d_task]
    student = "yolov8n.yaml" if s_task == "detect" else student_yaml(s_task)
    assert message in _cli_error(capsys, tmp_path, teacher=teacher, student=student, data=data, **extra)


def test_pose_teacher_of_other_keypoints_and_classify_teacher_are_one_line(task_data, workdir, tmp_path, capsys):
    other = make_teacher(workdir / "teacher-pose-5kpts.pt", "yolov8s-pose.yaml", NAMES, kpt_shape=(5, 3))
    err = _cli_error(capsys, tmp_path, teacher=other, student=student_yaml("pose"), data=task_data["pose"])
    assert "predicts keypoints of shape [5, 3] but data" in err
    model = ClassificationModel("yolov8n-cls.yaml", nc=len(NAMES), verbose=False)
    model.names = dict(enumerate(NAMES))
    classify = save_checkpoint(model, workdir / "teacher-cls.pt")
    err = _cli_error(capsys, tmp_path, teacher=classify, student=student_yaml("pose"), data=task_data["pose"])
    assert "is a classify model: yolodistill distils detect, segment, pose, obb models" in err


def test_a_trainer_of_another_task_is_one_line(task_teachers, task_data, data_yaml, teacher_pt, tmp_path):
    args = {"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml)}
    with pytest.raises(DistillError, match=r"use yolodistill train or distill\(\)") as e:
        SegmentDistillationTrainer(overrides={**args, **train_args(tmp_path / "runs")})
    assert "\n" not in str(e.value) and not (tmp_path / "runs").exists()


def _plan(task, teacher, data, model, lowres=False, **weights):
    args = SimpleNamespace(
        data=str(data), model=model, task=task, imgsz=IMGSZ, multi_scale=0.0, single_cls=False, pretrained=True
    )
    teacher_imgsz = 2 * IMGSZ if lowres else None
    teacher = teacher if isinstance(teacher, list) else str(teacher)  # a list: an ensemble
    return preflight(args, {**DISTILL_ARGS, "teacher": teacher, "teacher_imgsz": teacher_imgsz, **weights})


def _student(task):
    torch.manual_seed(1)
    kpts = {"data_kpt_shape": KPT_SHAPE} if task == "pose" else {}
    student = MODELS[task](student_yaml(task), nc=len(NAMES), verbose=False, **kpts)
    student.args = DEFAULT_CFG
    return student


@pytest.mark.parametrize("task", list(TASKS))
def test_task_losses_read_the_task_heads_and_train_their_branches(task, task_teachers, task_data):
    """head_kd plus the task's loss on a task teacher and student (random weights): every term > 0, and the task loss's
    gradient reaches the student's task branch (cv4: mask coefficients, keypoints, angles; the prototypes too)."""
    loss = TASKS[task][1]
    plan = _plan(task, task_teachers[task], task_data[task], student_yaml(task), recipe="head_kd", **{loss: 1.0})
    distiller, student = Distiller.from_plan(plan), _student(task)
    assert list(distiller.weights) == ["cls_kd", "ld", loss]
    x = torch.rand(2, 3, IMGSZ, IMGSZ)
    terms, _ = distil_step(distiller, student, x, backward=False)
    assert torch.isfinite(terms).all() and (terms > 0).all()
    student.zero_grad()
    terms[-1].backward()  # the task loss alone
    head = student.model[-1]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.cv4.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in head.cv3.parameters())  # class branch: not its job
    if task == "segment":
        assert all(p.grad is not None for p in head.proto.parameters())


@pytest.mark.parametrize("lowres", [False, True])
def test_proto_kd_adapts_the_student_prototypes_and_trains_them(lowres, task_teachers, task_data):
    """proto_kd's 1×1 adapter (the distiller's last, after the feature taps' and CrossKD's) maps the student's
    prototypes to the teacher's; its gradient reaches that adapter and the student's Proto module, not the mask
    coefficients (cv4: mask_kd's job); a half-resolution student's prototypes are resized to the teacher's."""
    plan = _plan("segment", task_teachers["segment"], task_data["segment"], student_yaml("segment"), lowres=lowres,
                 recipe="cwd", cross_kd=0.0 if lowres else 1.0, proto_kd=1.0)  # fmt: skip
    distiller, student = Distiller.from_plan(plan), _student("segment")
    teacher_head, head = plan.teacher.model[-1], student.model[-1]
    proto = distiller.adapters[-1]
    assert (proto.in_channels, proto.out_channels) == (head.nm, teacher_head.nm) == (plan.student_protos, 32)
    assert len(distiller.adapters) == 3 + (0 if lowres else 6) + 1  # taps, CrossKD's 2 branches × 3 levels, prototypes
    distiller.attach(student)
    try:
        x = torch.rand(2, 3, 2 * IMGSZ if lowres else IMGSZ, 2 * IMGSZ if lowres else IMGSZ)
        terms, items = distiller(x, student.predict(torch.nn.functional.interpolate(x, size=IMGSZ)))
    finally:
        distiller.detach()
    assert list(items)[-1] == "proto_kd_loss" and 0 < items["proto_kd_loss"] <= 4  # 2·(1 − r) per channel: ≤ 4
    student.zero_grad()
    terms[-1].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (*proto.parameters(), *head.proto.parameters()))
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in head.cv4.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in distiller.adapters[0].parameters())  # not its job


@pytest.mark.parametrize("task", list(TASKS))
def test_a_task_student_from_scratch_takes_its_tasks_default(task, task_teachers, task_data):
    """OBB students from scratch have a default of their own (recipes.TASK_RECIPES); the others take head_kd."""
    plan = _plan(task, task_teachers[task], task_data[task], student_yaml(task))
    expected = "obb" if task == "obb" else SCRATCH_RECIPE
    assert plan.recipe_name == expected and plan.recipe == load_recipe(expected)


@pytest.mark.parametrize("task", list(TASKS))
def test_every_detection_loss_works_on_task_heads(task, task_teachers, task_data):
    """The detection part of task heads distils with every head and feature loss, CrossKD's cut branches included."""
    weights = {"cls_kd": 1.0, "ld": 1.0, "box_kd": 1.0, "cross_kd": 1.0, "cwd": 1.0, "mimic": 1.0, "pkd": 1.0}
    plan = _plan(task, task_teachers[task], task_data[task], student_yaml(task), recipe="cwd", **weights)
    distiller = Distiller.from_plan(plan)
    terms, items = distil_step(distiller, _student(task), torch.rand(2, 3, IMGSZ, IMGSZ))
    assert {f"{k}_loss" for k in weights} == set(items)
    assert torch.isfinite(terms).all() and (terms > 0).all()
    assert all(p.grad is not None for p in distiller.adapters.parameters())  # feature and CrossKD adapters


@pytest.mark.parametrize("cfg", ["yolov8n-pose.yaml", "yolo26n-pose.yaml"])
def test_keypoint_offsets_are_the_heads_own_decoding(cfg):
    """Against the head's inference: its decoded pixels / stride − anchor point, for both decodings (2·x̂ − ½ and x̂)."""
    torch.manual_seed(0)
    model = MODELS["pose"](cfg, nc=2, data_kpt_shape=(3, 3), verbose=False).eval()
    head = model.model[-1]
    with torch.no_grad():
        raw = head_outputs(model.predict(torch.rand(2, 3, IMGSZ, IMGSZ)))["kpts"]
        anchors, strides = head.anchors.clone(), head.strides.clone()  # set by that inference
        pixels = head.kpts_decode(raw).view(2, 3, 3, -1)
        got = keypoint_offsets(head, raw)
    torch.testing.assert_close(got[:, :, :2], pixels[:, :, :2] / strides - anchors[None, None])
    torch.testing.assert_close(got[:, :, 2], raw.view(2, 3, 3, -1)[:, :, 2])  # the visibility logit, not σ of it
    assert torch.equal(head.anchors, anchors) and torch.equal(head.strides, strides)  # put back after the call


@pytest.mark.parametrize("cfg", ["yolov8n-seg.yaml", "yolo26n-seg.yaml"])
def test_mask_boxes_are_the_heads_own_boxes_on_the_prototype_grid(cfg):
    """Against the head's own box decoding at inference (image pixels), for DFL boxes and YOLO26's one-bin ones."""
    torch.manual_seed(0)
    model = MODELS["segment"](cfg, nc=2, verbose=False).eval()
    head = model.model[-1]
    with torch.no_grad():
        preds = head_outputs(model.predict(torch.rand(2, 3, IMGSZ, IMGSZ)))
        pixels = head._get_decode_boxes(preds)  # N×4×A: xywh, or xyxy for an end-to-end head
        got = mask_boxes(head, preds)
    xyxy = pixels.transpose(1, 2) if head.end2end else xywh2xyxy(pixels.transpose(1, 2))
    torch.testing.assert_close(got, xyxy / (IMGSZ / preds["proto"].shape[-1]))


@pytest.mark.parametrize("task", list(TASKS))
def test_a_yolo26_teacher_distils_its_task_into_a_yolov8_student(task, task_data, workdir):
    """YOLO26's task heads (Segment26, Pose26, OBB26: raw angles, other keypoint decoding) teach YOLOv8 ones; their
    end-to-end head has no DFL bins, so the recipe is class KD (lowres) plus the task's loss."""
    suffix, loss, *_ = TASKS[task]
    teacher = make_teacher(workdir / f"teacher-26{suffix}.pt", f"yolo26s{suffix}.yaml", NAMES, kpt_shape=KPT_SHAPE)
    plan = _plan(task, teacher, task_data[task], student_yaml(task), recipe="lowres", **{loss: 1.0})
    terms, items = distil_step(Distiller.from_plan(plan), _student(task), torch.rand(2, 3, IMGSZ, IMGSZ))
    assert set(items) == {"cls_kd_loss", f"{loss}_loss"} and torch.isfinite(terms).all() and (terms > 0).all()


@pytest.mark.parametrize("task", ["segment", "obb"])
def test_task_losses_at_low_resolution(task, task_teachers, task_data):
    """Mask coefficients and angles move to the teacher's anchors, the student's masks to the teacher's mask size."""
    loss = TASKS[task][1]
    plan = _plan(task, task_teachers[task], task_data[task], student_yaml(task), lowres=True, cls_kd=1.0, **{loss: 1})
    distiller, student = Distiller.from_plan(plan), _student(task)
    distiller.attach(student)
    try:
        x = torch.rand(2, 3, 2 * IMGSZ, 2 * IMGSZ)
        terms, items = distiller(x, student.predict(torch.nn.functional.interpolate(x, size=IMGSZ)))
    finally:
        distiller.detach()
    assert torch.isfinite(terms).all() and items[f"{loss}_loss"] > 0


def _pickled_modules(path) -> set[str]:
    with zipfile.ZipFile(path) as z:
        pickles = [z.read(n) for n in z.namelist() if n.endswith(".pkl")]
    return {arg.split(" ")[0] for p in pickles for op, arg, _ in pickletools.genops(p) if op.name == "GLOBAL"}


@pytest.mark.slow
@pytest.mark.parametrize("task", list(TASKS))
def test_one_epoch_run_saves_a_plain_student_of_its_task_that_exports(task, task_teachers, task_data, workdir):
    _, loss, metric, predicted = TASKS[task]
    losses = (loss, "proto_kd") if task == "segment" else (loss,)  # proto_kd: its adapter stays out of best.pt too
    args = train_args(workdir / "runs", name=f"task-{task}", **dict.fromkeys(losses, 1.0))
    if task == "obb":  # the Python API; the others through the command line
        result = distill(task_teachers[task], student_yaml(task), task_data[task], **args)
        run, metrics = result.save_dir, result.metrics.results_dict
        assert f"metrics/mAP50-95{metric}" in metrics
    else:
        argv = ["train", f"teacher={task_teachers[task]}", f"student={student_yaml(task)}", f"data={task_data[task]}"]
        assert entrypoint([*argv, *(f"{k}={v}" for k, v in args.items())]) == 0
        run = workdir / "runs" / f"task-{task}"
    with open(run / "results.csv") as f:
        row = next(csv.DictReader(f))
    for name in ("cls_kd", "ld", *losses):  # the default recipe's detection losses (class KD, LD) and the task's
        assert float(row[f"train/{name}_loss"]) > 0
    assert f"metrics/mAP50-95{metric}" in row

    best = run / "weights" / "best.pt"
    modules = _pickled_modules(best)
    assert "ultralytics.nn.tasks" in modules and not any(m.startswith("yolodistill") for m in modules)
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    plain = _student(task)
    assert type(ckpt["model"]) is type(plain) and ckpt["train_args"]["task"] == task
    assert sum(p.numel() for p in ckpt["model"].parameters()) == sum(p.numel() for p in plain.parameters())
    assert ckpt[CKPT_KEY]["recipe"][loss] == 1.0

    # plain Ultralytics, yolodistill unimportable, takes it as a model of its task
    code = (
        "import sys; sys.modules['yolodistill'] = None\n"
        "from ultralytics import YOLO\n"
        f"m = YOLO({str(best)!r})\n"
        f"r = m.val(data={str(task_data[task])!r}, imgsz={IMGSZ}, batch=8, device='cpu', plots=False, verbose=False)\n"
        f"p = m.predict({str(task_data[task].parent / 'images' / 'val')!r}, imgsz={IMGSZ}, conf=0.0, verbose=False)\n"
        f"print('OK', m.task, len(p), all(getattr(x, {predicted!r}) is not None for x in p))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"OK {task} 8 True" in out.stdout

    # ONNX export with verification of every raw output of the task, on the val images of the checkpoint's data
    r = export(shutil.copy(best, workdir / f"export-{task}.pt"), format="onnx")
    assert r.passed and 0 <= r.max_abs_diff <= r.tolerance and r.boxes > 0 and r.agreement == 1.0


class _Stop(Exception):
    pass


@pytest.mark.slow
def test_segment_run_resumes_with_its_trainer(task_teachers, task_data, workdir):
    args = train_args(workdir / "runs", name="task-resume", epochs=2, mask_kd=1.0, proto_kd=1.0, mimic=1.0)
    overrides = {"teacher": str(task_teachers["segment"]), "model": student_yaml("segment"), **args}
    trainer = SegmentDistillationTrainer(overrides={**overrides, "data": str(task_data["segment"])})

    def stop_after_first_save(t):
        raise _Stop

    trainer.add_callback("on_model_save", stop_after_first_save)
    with pytest.raises(_Stop):
        trainer.train()
    saved = torch.load(trainer.last, map_location="cpu", weights_only=False)
    cls = trainer_class({"resume": str(trainer.last)})
    assert cls is SegmentDistillationTrainer
    resumed = cls(overrides={"resume": str(trainer.last)})
    restored = {}
    resumed.add_callback(
        "on_pretrain_routine_end",
        lambda t: restored.update({k: v.clone() for k, v in t.distiller.adapters.state_dict().items()}),
    )
    resumed.train()
    assert resumed.start_epoch == 1 and resumed.distill_args["mask_kd"] == 1.0
    assert restored and all(torch.equal(restored[k], v) for k, v in saved[CKPT_KEY]["adapters"].items())
    with open(resumed.csv) as f:
        rows = list(csv.DictReader(f))
    assert [int(float(r["epoch"])) for r in rows] == [1, 2]
    assert all(float(r[f"train/{k}_loss"]) > 0 for r in rows for k in ("mask_kd", "proto_kd"))


@pytest.mark.slow
@pytest.mark.parametrize("task", ["segment", "pose"])
def test_task_run_with_unlabeled_images(task, task_teachers, task_data, workdir):
    """unlabeled= works for task students too: their batches mix with unlabelled ones (masks and keypoints of the
    labelled images only), the task loss distils on all of them."""
    loss = TASKS[task][1]
    unlabeled = task_data["detect"].parent / "images" / "train"  # other images, their labels ignored
    args = train_args(workdir / "runs", name=f"task-unlabeled-{task}", unlabeled=str(unlabeled), **{loss: 1.0})
    result = distill(task_teachers[task], student_yaml(task), task_data[task], **args)
    with open(result.save_dir / "results.csv") as f:
        row = next(csv.DictReader(f))
    assert float(row[f"train/{loss}_loss"]) > 0 and float(row["train/ld_loss"]) > 0
    assert torch.load(result.best, map_location="cpu", weights_only=False)[CKPT_KEY]["unlabeled_images"] == 16
