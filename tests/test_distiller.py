"""The Distiller's routing on real YOLOv8 models (random weights): taps, adapters, alignment, which inputs reach which
loss, when the teacher runs its head, gradient flow, schedules and autocast, and the compatibility checks."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import calibrated, distil_step
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import DEFAULT_CFG

from yolodistill import DistillError
from yolodistill.alignment import align, align_anchors
from yolodistill.crosshead import cut_channels
from yolodistill.distiller import Distiller
from yolodistill.recipes import load_recipe
from yolodistill.taps import FeatureTaps, detect_inputs
from yolodistill.teacher import freeze


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    teacher = freeze(DetectionModel("yolov8s.yaml", nc=6, verbose=False))
    student = DetectionModel("yolov8n.yaml", nc=6, verbose=False)
    student.args = DEFAULT_CFG  # the detection criterion reads its gains (box, cls, dfl) from here
    return teacher, student


def make_distiller(teacher, student, recipe="cwd_mimic"):
    layers_t, layers_s = detect_inputs(teacher), detect_inputs(student)
    return Distiller(teacher, load_recipe(recipe), layers_t, layers_s, [128, 256, 512], [64, 128, 256])


def test_tap_shapes_per_level(models):
    teacher, student = models
    assert detect_inputs(student) == [15, 18, 21]
    for model, channels in ((teacher, (128, 256, 512)), (student, (64, 128, 256))):
        with FeatureTaps(model, detect_inputs(model)) as taps:
            model.predict(torch.zeros(2, 3, 128, 96))
            maps = taps.collect()
        assert [tuple(m.shape) for m in maps] == [(2, c, 128 // s, 96 // s) for c, s in zip(channels, (8, 16, 32))]


def test_taps_hold_only_the_current_batch_and_remove_cleanly(models):
    _, student = models
    before = [len(student.model[i]._forward_hooks) for i in (15, 18, 21)]
    taps = FeatureTaps(student, [15, 18, 21])
    with torch.no_grad():
        student.predict(torch.zeros(1, 3, 64, 64))
    taps.collect()
    with pytest.raises(RuntimeError, match="did not run"):
        taps.collect()  # released after the first collect
    taps.remove()
    assert [len(student.model[i]._forward_hooks) for i in (15, 18, 21)] == before


@pytest.mark.parametrize(("student_hw", "teacher_hw"), [((8, 8), (16, 16)), ((13, 13), (20, 20)), ((52, 40), (80, 60))])
def test_align_upsamples_to_the_teacher_grid(student_hw, teacher_hw):
    s = [torch.randn(2, 5, *student_hw, requires_grad=True)]
    t = [torch.randn(2, 5, *teacher_hw)]
    (out,) = align(s, t)
    assert out.shape == t[0].shape
    out.sum().backward()
    assert s[0].grad is not None


def test_align_leaves_equal_grids_untouched():
    s, t = [torch.randn(1, 3, 4, 4)], [torch.randn(1, 3, 4, 4)]
    assert align(s, t)[0] is s[0]


@pytest.mark.parametrize(("imgsz", "teacher_imgsz"), [(64, 64), (64, 128), (96, 160)])
def test_gradients_reach_student_and_adapters_never_teacher(models, imgsz, teacher_imgsz):
    teacher, student = models
    student.train()
    d = make_distiller(teacher, student)
    d.attach(student)
    try:
        x_t = torch.rand(2, 3, teacher_imgsz, teacher_imgsz)
        x_s = torch.nn.functional.interpolate(x_t, size=(imgsz, imgsz), mode="bilinear", antialias=True)
        terms, items = d(x_t, student.predict(x_s))
        assert set(items) == {"cwd_loss", "mimic_loss"} and terms.shape == (2,)
        student.zero_grad()
        terms.sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.adapters.parameters())
        assert student.model[15].cv2.conv.weight.grad.abs().sum() > 0
        assert student.model[0].conv.weight.grad.abs().sum() > 0  # through the backbone, not only the tapped layer
        assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
        assert not teacher.training
    finally:
        d.detach()
        d.adapters.zero_grad()
    assert all(len(student.model[i]._forward_hooks) == 0 for i in (15, 18, 21))


@pytest.mark.parametrize(("imgsz", "teacher_imgsz", "r"), [(64, 128, 4), (64, 64, 2)])
def test_isrd_trains_the_students_input_conv_and_its_decoder_only(models, imgsz, teacher_imgsz, r):
    """ISRD reads the student's input conv (layer 0) through the decoder the distiller adds to its adapters: its
    gradient reaches both and no later layer; it reads no teacher output, so alone it has none to check."""
    teacher, student = models
    student.train()
    recipe = load_recipe("cwd", {"cwd": 0.0, "isrd": 1.0})
    d = Distiller(teacher, recipe, detect_inputs(teacher), detect_inputs(student), [128, 256, 512], [64, 128, 256],
                  image_decoder=(16, r))  # fmt: skip
    assert len(d.adapters) == 1 and d.adapters[0].conv.out_channels == 3 * r * r
    x_t = torch.rand(2, 3, teacher_imgsz, teacher_imgsz)
    x_s = torch.nn.functional.interpolate(x_t, size=(imgsz, imgsz), mode="bilinear", antialias=True)
    student.zero_grad()
    d.attach(student)
    try:
        terms, items = d(x_t, student.predict(x_s))
    finally:
        d.detach()
    assert list(items) == ["isrd_loss"] and 0 < items["isrd_loss"] < 1 and int(d.dropped_steps) == 0
    terms.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.adapters.parameters())
    assert student.model[0].conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in student.model[1].parameters())
    assert len(student.model[0]._forward_hooks) == 0


def test_teacher_stops_after_its_last_tap(models):
    teacher, student = models
    d = make_distiller(teacher, student)
    ran = []
    handle = teacher.model[-1].register_forward_hook(lambda *a: ran.append(True))
    d.attach(student)
    try:
        d(torch.rand(1, 3, 64, 64), student.predict(torch.rand(1, 3, 64, 64)))
    finally:
        d.detach()
        handle.remove()
    assert not ran  # the Detect head's outputs feed no loss, so it never runs


def test_criterion_appends_weighted_terms_scaled_by_batch(models):
    teacher, student = models
    student.train()
    d = make_distiller(teacher, student, "cwd")
    d.attach(student)
    try:
        batch = {
            "img": torch.rand(2, 3, 64, 64),
            "batch_idx": torch.tensor([0.0, 1.0]),
            "cls": torch.tensor([[1.0], [2.0]]),
            "bboxes": torch.tensor([[0.5, 0.5, 0.3, 0.3], [0.4, 0.4, 0.2, 0.2]]),
        }
        loss, items = student.loss(batch)
        assert list(items) == ["box_loss", "cls_loss", "dfl_loss", "cwd_loss"]
        assert loss.shape == (4,)
        assert loss[-1].item() == pytest.approx(2 * items["cwd_loss"].item(), rel=1e-6)
    finally:
        d.detach()
    assert type(student.criterion).__module__.startswith("ultralytics")


@pytest.mark.parametrize("family", ["yolov5su.yaml", "yolo11s.yaml", "yolo26s.yaml"])
def test_teachers_of_other_families_teach_a_yolov8_student(family, tmp_path, data_yaml):
    """Every loss with every family that has the student's head outputs; YOLO26's end-to-end head has no DFL bins
    (reg_max 1), so LD is refused in one line there and the other losses still work."""
    from types import SimpleNamespace

    from conftest import make_teacher

    from yolodistill.checks import DISTILL_ARGS, preflight

    args = SimpleNamespace(
        data=str(data_yaml), model="yolov8n.yaml", task="detect", imgsz=64, multi_scale=0.0, single_cls=False
    )
    weights = {"recipe": "cwd_mimic", "pkd": 1.0, "cls_kd": 0.5, "ld": 0.25, "box_kd": 1.0, "cross_kd": 1.0}
    distill = {**DISTILL_ARGS, "teacher": str(make_teacher(tmp_path / "t.pt", cfg=family)), **weights}
    if family.startswith("yolo26"):
        for key in ("ld", "box_kd"):
            with pytest.raises(DistillError, match=rf"{key} needs equal box distributions.*reg_max=1") as e:
                preflight(args, distill)
            assert "\n" not in str(e.value)
            distill[key] = None
    plan = preflight(args, distill)
    student = DetectionModel("yolov8n.yaml", nc=6, verbose=False)
    student.args = DEFAULT_CFG
    d = Distiller.from_plan(plan)
    terms, items = distil_step(d, student, torch.rand(2, 3, 64, 64))
    assert {"cwd_loss", "mimic_loss", "pkd_loss", "cls_kd_loss", "cross_kd_loss"} <= set(items)
    assert ("ld_loss" in items and "box_kd_loss" in items) != family.startswith("yolo26")
    assert torch.isfinite(terms).all() and (terms > 0).all()
    assert all(p.grad is not None for p in d.adapters.parameters())


def test_cross_kd_with_align_scale_reads_the_teachers_maps_at_the_cut(models):
    _, student = models
    x = torch.rand(2, 3, 64, 64)
    torch.manual_seed(0)  # a teacher whose maps vary: with constant ones align_scale gives its head its own maps
    teacher = freeze(calibrated(DetectionModel("yolov8s.yaml", nc=6, verbose=False)))
    values = {}
    for align_scale in (False, True):
        recipe = load_recipe("cross_kd", {"cross_kd_align": align_scale})
        torch.manual_seed(0)
        distiller = Distiller(teacher, recipe, [], [], [], [], cut_channels(student.model[-1])[0])
        assert (distiller.cross.teacher_taps is not None) == align_scale
        terms, _ = distil_step(distiller, student, x, backward=False)
        values[align_scale] = terms[0].item()
        if align_scale:
            distiller.cross.teacher_taps.remove()
    assert values[True] > 0 and math.isfinite(values[True]) and values[True] != pytest.approx(values[False])


def test_align_anchors_upsamples_each_level_to_the_teacher_grid():
    s_feats = [torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2)]
    t_feats = [torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4)]
    scores = torch.cat([torch.full((1, 3, 16), 1.0), torch.full((1, 3, 4), 2.0)], dim=-1)
    out = align_anchors(scores, s_feats, t_feats)
    assert out.shape == (1, 3, 64 + 16)
    assert torch.all(out[..., :64] == 1.0) and torch.all(out[..., 64:] == 2.0)  # levels stay apart
    assert align_anchors(scores, s_feats, s_feats) is scores


@pytest.mark.parametrize(
    ("recipe", "overrides", "head_runs"),
    [
        ("head_kd", {}, True),
        ("cwd_mimic", {}, False),
        ("head_pkd", {}, True),
        ("mimic", {"feature_weighted": 1}, True),
        ("head_kd", {"ld": 0, "box_kd": 1}, True),
        ("head_kd", {"cls_kd": 0, "ld": 0, "cross_kd": 1}, True),
    ],
)
def test_teacher_runs_its_head_only_for_head_losses(models, recipe, overrides, head_runs):
    teacher, student = models
    r = load_recipe(recipe, overrides)
    cut = cut_channels(student.model[-1])[0] if r.cross_kd else []
    d = Distiller(teacher, r, detect_inputs(teacher), detect_inputs(student), [128, 256, 512], [64, 128, 256], cut)
    ran = []
    handle = teacher.model[-1].register_forward_hook(lambda *a: ran.append(True))
    try:
        _, items = distil_step(d, student, torch.rand(2, 3, 64, 64))
    finally:
        handle.remove()
    assert bool(ran) == head_runs
    assert list(items) == [f"{name}_loss" for name in r.weights()]
    # no feature loss, no feature adapters to train; CrossKD adds one per head branch (3 levels × box, class)
    assert len(d.adapters) == (3 if r.uses_features else 0) + (6 if r.cross_kd else 0)
    head_grad = student.model[-1].cv3[0][0].conv.weight.grad
    head_loss = any(k in r.weights() for k in ("cls_kd", "ld", "box_kd", "cross_kd"))
    assert (head_grad is not None and head_grad.abs().sum() > 0) == head_loss  # head losses train the student's head
    predictor_grad = student.model[-1].cv3[0][-1].weight.grad
    if r.cross_kd and not r.cls_kd:  # CrossKD reaches the student's head before the cut, never its predictors
        assert predictor_grad is None or predictor_grad.abs().sum() == 0
    student.zero_grad()


def test_cross_kd_for_a_lower_resolution_student_runs_on_the_teachers_anchors(models):
    """The student's maps at the cut are upsampled to the teacher's grid before the teacher's head layers."""
    teacher, student = models
    r = load_recipe("lowres", {"cls_kd": 0, "cross_kd": 1})
    d = Distiller(teacher, r, [15, 18, 21], [15, 18, 21], [128, 256, 512], [64, 128, 256], [64] * 6)
    x_t, x_s = torch.rand(2, 3, 128, 128), torch.rand(2, 3, 64, 64)
    d.attach(student)
    try:
        student.predict(x_s)
        with torch.no_grad():
            t_head = teacher.predict(x_t)[1]
        boxes, scores = d.cross(t_head["feats"])
    finally:
        d.detach()
    assert boxes.shape == t_head["boxes"].shape and scores.shape == t_head["scores"].shape  # 336 anchors, not 84
    scores.sum().backward()
    assert student.model[-1].cv3[0][0].conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())  # the teacher's head layers stay frozen
    student.zero_grad()


def test_head_losses_follow_the_schedule_factor(models):
    teacher, student = models
    d = Distiller(teacher, load_recipe("head_kd"), [15, 18, 21], [15, 18, 21], [128, 256, 512], [64, 128, 256])
    d.attach(student)
    try:
        x = torch.rand(2, 3, 64, 64)
        full, _ = d(x, student.predict(x))
        d.factor = 0.25
        quarter, _ = d(x, student.predict(x))
    finally:
        d.detach()
    torch.testing.assert_close(quarter, 0.25 * full)


def test_under_bf16_autocast_teacher_runs_low_precision_losses_stay_fp32(models):
    """Ultralytics computes the loss inside autocast; on CPU, bf16 autocast takes the same path as fp16 on CUDA."""
    teacher, student = models
    d = Distiller(teacher, load_recipe("head_pkd"), [15, 18, 21], [15, 18, 21], [128, 256, 512], [64, 128, 256])
    dtypes = []
    handle = teacher.model[15].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    d.attach(student)
    try:
        x = torch.rand(2, 3, 64, 64)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            terms, _ = d(x, student.predict(x))
        terms.sum().backward()
    finally:
        d.detach()
        handle.remove()
    assert dtypes == [torch.bfloat16] and terms.dtype == torch.float32 and torch.isfinite(terms).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.adapters.parameters())
    student.zero_grad()


def test_cross_kd_is_refused_for_a_head_it_cannot_cut(models):
    """A head whose branches are single layers has no place to feed the student's features into the teacher's."""
    from torch import nn

    from yolodistill.checks import _check_head_losses

    teacher, _ = models
    student = DetectionModel("yolov8n.yaml", nc=6, verbose=False)
    head = student.model[-1]
    head.cv2 = nn.ModuleList(nn.Conv2d(c.conv.in_channels, 64, 1) for c in (b[0] for b in head.cv2))
    with pytest.raises(DistillError, match="cross_kd needs a student head whose box and class branches") as e:
        _check_head_losses(load_recipe("head_kd", {"cross_kd": 1}), teacher, student, lowres=False)
    assert "\n" not in str(e.value)
    _check_head_losses(load_recipe("head_kd"), teacher, student, lowres=False)  # without cross_kd it is fine
