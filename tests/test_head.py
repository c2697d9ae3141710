"""Head-level and normalised losses against float64 references, the teacher's head path, weight schedules, refusals,
one epoch with every new loss, and the same-seed start shared with plain Ultralytics (issue 12)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from conftest import distil_step, save_checkpoint, train_args
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import DEFAULT_CFG

from yolodistill import DistillationTrainer, DistillError
from yolodistill.alignment import align_anchors
from yolodistill.crosshead import CrossHead, cut_channels
from yolodistill.distiller import Distiller
from yolodistill.losses import BoxKDLoss, ClassKDLoss, CrossKDLoss, LDLoss, MimicLoss, PKDLoss
from yolodistill.recipes import load_recipe
from yolodistill.taps import detect_inputs
from yolodistill.teacher import freeze


def rand(seed: int, *shape: int, scale: float = 2.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def class_kd_reference(s: np.ndarray, t: np.ndarray, tau: float, weighted: bool, beta: float = 0.0) -> float:
    """Binary KL per anchor and class written out with explicit loops, normalised by the teacher's soft positives; with
    beta > 0 BCKD's term instead: binary cross-entropy with the soft target times |q − p|^β."""
    n, k, a = s.shape
    total, positives = 0.0, 0.0
    for i in range(n):
        for j in range(a):
            pt_all = [sigmoid(t[i, c, j] / tau) for c in range(k)]
            w = max(pt_all) if weighted else 1.0
            for c in range(k):
                p, q = pt_all[c], sigmoid(s[i, c, j] / tau)
                if beta > 0:
                    total += w * -(p * math.log(q) + (1 - p) * math.log(1 - q)) * abs(q - p) ** beta
                else:
                    total += w * (p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q)))
                positives += p
    return tau**2 * total / max(1.0, positives)


def ld_reference(s: np.ndarray, t: np.ndarray, t_cls: np.ndarray, tau: float) -> float:
    n, _, a = s.shape
    r = s.shape[1] // 4
    total, weights = 0.0, 0.0
    for i in range(n):
        for j in range(a):
            w = max(sigmoid(t_cls[i, :, j]))
            kl = 0.0
            for side in range(4):
                ps = np.exp(s[i, side * r : (side + 1) * r, j] / tau)
                pt = np.exp(t[i, side * r : (side + 1) * r, j] / tau)
                ps, pt = ps / ps.sum(), pt / pt.sum()
                kl += float(np.sum(pt * np.log(pt / ps)))
            total += w * kl / 4
            weights += w
    return tau**2 * total / max(1.0, weights)


def box_kd_reference(s: np.ndarray, t: np.ndarray, t_cls: np.ndarray, s_cls: np.ndarray | None = None) -> float:
    """Expected DFL distance per side, boxes around the anchor, GIoU from its definition, teacher-score weights (with
    `s_cls`, BCKD's: the largest score difference of the two)."""
    n, _, a = s.shape
    total, weights = 0.0, 0.0
    for i in range(n):
        for j in range(a):
            boxes = []
            for x in (s, t):
                d = []
                for side in range(4):
                    logits = x[i, side * (x.shape[1] // 4) : (side + 1) * (x.shape[1] // 4), j]
                    p = np.exp(logits - logits.max())
                    d.append(float(np.sum(np.arange(len(p)) * p / p.sum())))
                boxes.append((-d[0], -d[1], d[2], d[3]))
            (a1, b1, a2, b2), (c1, d1, c2, d2) = boxes
            inter = max(0.0, min(a2, c2) - max(a1, c1)) * max(0.0, min(b2, d2) - max(b1, d1))
            union = (a2 - a1) * (b2 - b1) + (c2 - c1) * (d2 - d1) - inter
            hull = (max(a2, c2) - min(a1, c1)) * (max(b2, d2) - min(b1, d1))
            giou = inter / union - (hull - union) / hull
            w = max(sigmoid(t_cls[i, :, j]))
            if s_cls is not None:
                w = max(abs(sigmoid(t_cls[i, :, j]) - sigmoid(s_cls[i, :, j])))
            total += w * (1 - giou)
            weights += w
    return total / max(1.0, weights)


def pkd_reference(s: np.ndarray, t: np.ndarray) -> float:
    total = 0.0
    for c in range(s.shape[1]):
        a, b = s[:, c].ravel(), t[:, c].ravel()
        a, b = (a - a.mean()) / np.sqrt(a.var() + 1e-6), (b - b.mean()) / np.sqrt(b.var() + 1e-6)
        total += float(np.sum((a - b) ** 2))
    return total / s.size


@pytest.mark.parametrize(("tau", "weighted"), [(1.0, False), (2.0, False), (1.0, True)])
def test_class_kd_matches_reference(tau, weighted):
    s, t = rand(0, 2, 3, 7), rand(1, 2, 3, 7)
    expected = class_kd_reference(s.numpy(), t.numpy(), tau, weighted)
    assert expected > 0.01
    assert ClassKDLoss(tau, weighted)(s, t).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_ld_matches_reference(tau):
    s, t, t_cls = rand(2, 2, 4 * 5, 6), rand(3, 2, 4 * 5, 6), rand(4, 2, 3, 6)
    expected = ld_reference(s.numpy(), t.numpy(), t_cls.numpy(), tau)
    assert expected > 0.01
    assert LDLoss(tau)(s, t, t_cls).item() == pytest.approx(expected, rel=1e-6)


def test_box_kd_matches_reference():
    s, t, t_cls = rand(2, 2, 4 * 5, 6), rand(3, 2, 4 * 5, 6), rand(4, 2, 3, 6)
    expected = box_kd_reference(s.numpy(), t.numpy(), t_cls.numpy())
    assert expected > 0.01
    assert BoxKDLoss()(s, t, t_cls).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(("tau", "beta"), [(1.0, 1.0), (2.0, 2.0)])
def test_class_kd_with_bckd_beta_matches_reference(tau, beta):
    s, t = rand(0, 2, 3, 7), rand(1, 2, 3, 7)
    expected = class_kd_reference(s.numpy(), t.numpy(), tau, False, beta)
    assert expected > 0.01
    assert expected != pytest.approx(class_kd_reference(s.numpy(), t.numpy(), tau, False), rel=0.05)
    assert ClassKDLoss(tau, beta=beta)(s, t).item() == pytest.approx(expected, rel=1e-6)
    assert ClassKDLoss(tau, beta=beta)(t, t).item() == 0.0  # the factor is 0 where the student agrees


def test_box_kd_with_bckd_weights_matches_reference():
    s, t, t_cls, s_cls = rand(2, 2, 4 * 5, 6), rand(3, 2, 4 * 5, 6), rand(4, 2, 3, 6), rand(5, 2, 3, 6)
    expected = box_kd_reference(s.numpy(), t.numpy(), t_cls.numpy(), s_cls.numpy())
    assert expected != pytest.approx(box_kd_reference(s.numpy(), t.numpy(), t_cls.numpy()), rel=0.01)
    s_cls.requires_grad_(True)
    loss = BoxKDLoss("bckd")(s, t, t_cls, s_cls)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert not loss.requires_grad  # the weights are detached: no gradient reaches the student's scores through them
    with pytest.raises(ValueError, match="needs the student's class scores"):
        BoxKDLoss("bckd")(s, t, t_cls)


def test_cross_kd_align_scale_matches_reference():
    x, t = rand(0, 2, 3, 4, 5), rand(1, 2, 3, 4, 5) * 3 + 1
    expected = np.empty_like(x.numpy())
    for c in range(3):
        xc, tc = x[:, c].numpy(), t[:, c].numpy()
        expected[:, c] = (xc - xc.mean()) / (xc.std(ddof=1) + 1e-6) * tc.std(ddof=1) + tc.mean()
    out = CrossHead.align_scale(x, t)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(out.mean(dim=(0, 2, 3)), t.mean(dim=(0, 2, 3)))


def test_cross_kd_with_align_scale_reads_the_teachers_maps_at_the_cut(models):
    teacher, student = models
    x = torch.rand(2, 3, 64, 64)
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


def test_cross_kd_matches_reference():
    s_cls, t_cls, s_box, t_box = rand(0, 2, 3, 7), rand(1, 2, 3, 7), rand(2, 2, 4 * 5, 7), rand(3, 2, 4 * 5, 7)
    expected = class_kd_reference(s_cls.numpy(), t_cls.numpy(), 1.0, False)
    expected += ld_reference(s_box.numpy(), t_box.numpy(), t_cls.numpy(), 2.0)
    assert CrossKDLoss(1.0, 2.0)(s_cls, s_box, t_cls, t_box).item() == pytest.approx(expected, rel=1e-6)


def test_pkd_matches_reference_and_ignores_scale_and_shift():
    s, t = [rand(5, 2, 3, 4, 5)], [rand(6, 2, 3, 4, 5)]
    assert PKDLoss()(s, t).item() == pytest.approx(pkd_reference(s[0].numpy(), t[0].numpy()), rel=1e-6)
    # a student that is the teacher up to a per-channel gain and offset already matches it
    gain, offset = torch.tensor([3.0, 0.2, 7.0]).view(1, 3, 1, 1), torch.tensor([5.0, -1.0, 0.0]).view(1, 3, 1, 1)
    assert PKDLoss()([t[0] * gain + offset], t).item() == pytest.approx(0.0, abs=1e-6)


def test_score_weighted_mimic_and_pkd_match_reference():
    s, t = [rand(10, 2, 3, 4, 5), rand(11, 2, 3, 2, 2)], [rand(12, 2, 3, 4, 5), rand(13, 2, 3, 2, 2)]
    masks = [rand(14, 2, 1, 4, 5).abs(), rand(15, 2, 1, 2, 2).abs() * 3]
    expected = 0.0
    for a, b, m in zip(s, t, masks):
        a, b, m = a.numpy(), b.numpy(), m.numpy()
        expected += float(np.sum(m * (a - b) ** 2)) / (a.shape[1] * max(1.0, float(m.sum())))
    assert MimicLoss()(s, t, masks).item() == pytest.approx(expected, rel=1e-6)
    ones = [torch.ones_like(m) for m in masks]
    for loss in (MimicLoss(), PKDLoss()):  # uniform masks give back the plain mean
        assert loss(s, t, ones).item() == pytest.approx(loss(s, t).item(), rel=1e-6)


@pytest.mark.parametrize(
    ("loss", "args"),
    [
        (ClassKDLoss(2.0), (2, 3, 9)),
        (ClassKDLoss(1.0, True), (2, 3, 9)),
        (LDLoss(2.0), (2, 16 * 4, 9)),
        (BoxKDLoss(), (2, 16 * 4, 9)),
    ],
)
def test_head_losses_zero_when_equal_positive_otherwise_fp32(loss, args):
    t = rand(7, *args)
    extra = (rand(8, 2, 3, 9),) if isinstance(loss, (LDLoss, BoxKDLoss)) else ()
    assert loss(t.clone(), t, *extra).item() == pytest.approx(0.0, abs=1e-9)
    assert loss(rand(9, *args).half(), t.half(), *extra).dtype == torch.float32
    assert loss(rand(9, *args), t, *extra).item() > 0


def test_class_kd_tiny_case_by_hand():
    # one anchor, one class: teacher logit 0 → p = 1/2; student logit ln 3 → q = 3/4
    expected = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    got = ClassKDLoss()(torch.tensor([[[math.log(3.0)]]]), torch.zeros(1, 1, 1)).item()
    assert got == pytest.approx(expected, rel=1e-6)  # normaliser max(1, 1/2) = 1


def test_align_anchors_upsamples_each_level_to_the_teacher_grid():
    s_feats = [torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2)]
    t_feats = [torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4)]
    scores = torch.cat([torch.full((1, 3, 16), 1.0), torch.full((1, 3, 4), 2.0)], dim=-1)
    out = align_anchors(scores, s_feats, t_feats)
    assert out.shape == (1, 3, 64 + 16)
    assert torch.all(out[..., :64] == 1.0) and torch.all(out[..., 64:] == 2.0)  # levels stay apart
    assert align_anchors(scores, s_feats, s_feats) is scores


COS45 = math.cos(math.pi / 4)


@pytest.mark.parametrize(
    ("schedule", "off", "expected"),
    [
        ("constant", False, [1.0, 1.0, 1.0, 1.0, 1.0]),
        ("linear", False, [1.0, 0.775, 0.55, 0.325, 0.1]),
        ("cosine", False, [1.0, 0.1 + 0.45 * (1 + COS45), 0.55, 0.1 + 0.45 * (1 - COS45), 0.1]),
        ("constant", True, [1.0, 1.0, 1.0, 0.0, 0.0]),
    ],
)  # fmt: skip
def test_schedule_factor(schedule, off, expected):
    recipe = load_recipe("head_kd", {"schedule": schedule, "off_close_mosaic": off})
    assert [recipe.factor(e, 5, close_mosaic=2) for e in range(5)] == pytest.approx(expected)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    teacher = freeze(DetectionModel("yolov8s.yaml", nc=6, verbose=False))
    student = DetectionModel("yolov8n.yaml", nc=6, verbose=False)
    student.args = DEFAULT_CFG
    return teacher, student


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
