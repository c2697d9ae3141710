"""Every loss against a float64 reference computed independently (numpy, explicit loops, straight from the paper's
formula), plus their basic properties: zero when student equals teacher, level weights, fp32 under fp16 inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from yolodistill.adapters import ImageDecoder
from yolodistill.crosshead import CrossHead
from yolodistill.losses import (
    AngleKDLoss,
    BoxKDLoss,
    ClassKDLoss,
    CrossKDLoss,
    CWDLoss,
    ISRDLoss,
    KeypointKDLoss,
    LDLoss,
    MaskKDLoss,
    MimicLoss,
    PKDLoss,
    ProtoKDLoss,
)


def cwd_reference(student: list[np.ndarray], teacher: list[np.ndarray], tau: float) -> float:
    """Channel-wise distillation written out map by map in float64, straight from the paper's formula."""
    total = 0.0
    for s, t in zip(student, teacher):
        n, c = s.shape[:2]
        level = 0.0
        for i in range(n):
            for j in range(c):
                ps = np.exp(s[i, j].ravel() / tau)
                ps /= ps.sum()
                pt = np.exp(t[i, j].ravel() / tau)
                pt /= pt.sum()
                level += float(np.sum(pt * np.log(pt / ps)))
        total += level * tau**2 / (n * c)
    return total


def maps(seed: int, shapes=((2, 3, 4, 5), (2, 6, 2, 3))) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g, dtype=torch.float64) * 2 for s in shapes]


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_cwd_matches_reference(tau):
    s, t = maps(0), maps(1)
    expected = cwd_reference([x.numpy() for x in s], [x.numpy() for x in t], tau)
    got = CWDLoss(tau=tau)(s, t).item()
    assert expected > 0.01
    assert got == pytest.approx(expected, rel=1e-5)


def test_cwd_tiny_case_by_hand():
    # One channel over two locations: teacher logits (0, ln 3) → p_t = (1/4, 3/4); student (0, 0) → p_s = (1/2, 1/2).
    t = [torch.tensor([[[[0.0, math.log(3.0)]]]])]
    s = [torch.zeros(1, 1, 1, 2)]
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert CWDLoss()(s, t).item() == pytest.approx(expected, rel=1e-6)


def test_mimic_matches_reference():
    s, t = maps(2), maps(3)
    expected = sum(float(np.mean((a.numpy() - b.numpy()) ** 2)) for a, b in zip(s, t))
    assert MimicLoss()(s, t).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("loss", [CWDLoss(tau=2.0), MimicLoss()])
def test_zero_when_equal_and_positive_otherwise(loss):
    t = maps(4)
    assert loss([x.clone() for x in t], t).item() == pytest.approx(0.0, abs=1e-9)
    assert loss(maps(5), t).item() > 0


@pytest.mark.parametrize("cls", [CWDLoss, MimicLoss])
def test_level_weights(cls):
    s, t = maps(6), maps(7)
    per_level = [cls()([a], [b]).item() for a, b in zip(s, t)]
    weighted = cls(level_weights=[0.5, 3.0])(s, t).item()
    assert weighted == pytest.approx(0.5 * per_level[0] + 3.0 * per_level[1], rel=1e-5)


def test_fp16_inputs_give_fp32_loss():
    s, t = [x.half() for x in maps(8)], [x.half() for x in maps(9)]
    assert CWDLoss()(s, t).dtype == torch.float32
    assert MimicLoss()(s, t).dtype == torch.float32


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ"):
        MimicLoss()([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 2, 4, 4)])


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


def binary_kl_reference(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def bilinear_reference(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres (align_corners=False), clamped at the borders, written out per pixel."""
    h, w = img.shape
    out = np.empty((out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            y, x = max(0.0, (i + 0.5) * h / out_h - 0.5), max(0.0, (j + 0.5) * w / out_w - 0.5)
            y0, x0 = min(int(y), h - 1), min(int(x), w - 1)
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            dy, dx = y - y0, x - x0
            out[i, j] = (img[y0, x0] * (1 - dy) * (1 - dx) + img[y0, x1] * (1 - dy) * dx
                         + img[y1, x0] * dy * (1 - dx) + img[y1, x1] * dy * dx)  # fmt: skip
    return out


def mask_kd_reference(sc, sp, tc, tp, t_boxes, t_cls, topk: int) -> float:
    """Per image the topk anchors of largest teacher score; each model's mask logits Σ_m c_m·P_m, the student's resized
    to the teacher's size; binary KL per pixel, averaged over the pixels inside the teacher's box (pixel column x1 ≤ j
    < x2, row y1 ≤ i < y2), weighted by the teacher's score."""
    n, _, a = tc.shape
    total, weights = 0.0, 0.0
    for i in range(n):
        w = [max(sigmoid(t_cls[i, :, j])) for j in range(a)]
        for j in sorted(range(a), key=lambda j: -w[j])[:topk]:
            zt = np.tensordot(tc[i, :, j], tp[i], axes=1)
            zs = np.tensordot(sc[i, :, j], sp[i], axes=1)
            if zs.shape != zt.shape:
                zs = bilinear_reference(zs, *zt.shape)
            x1, y1, x2, y2 = t_boxes[i, j]
            kl = [
                binary_kl_reference(sigmoid(zt[r, c]), sigmoid(zs[r, c]))
                for r in range(zt.shape[0])
                for c in range(zt.shape[1])
                if x1 <= c < x2 and y1 <= r < y2
            ]
            total += w[j] * sum(kl) / max(1, len(kl))
            weights += w[j]
    return total / max(1.0, weights)


@pytest.mark.parametrize(("student_hw", "topk"), [((6, 5), 3), ((3, 4), 4), ((6, 5), 100)])
def test_mask_kd_matches_reference(student_hw, topk):
    """Other mask counts for teacher (4) and student (3); the student's prototypes also at a lower resolution; boxes
    anywhere, some reaching out of the map and one empty."""
    sc, tc, t_cls = rand(0, 2, 3, 7), rand(1, 2, 4, 7), rand(2, 2, 3, 7)
    sp, tp = rand(3, 2, 3, *student_hw, scale=0.5), rand(4, 2, 4, 6, 5, scale=0.5)
    corner = torch.rand(2, 7, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 5 - 1
    boxes = torch.cat([corner, corner + rand(6, 2, 7, 2).abs() + 0.3], dim=2)
    boxes[0, int(t_cls[0].amax(0).argmax())] = torch.tensor([2.2, 2.2, 2.4, 2.4])  # covers no pixel: its ℓ is 0
    expected = mask_kd_reference(sc.numpy(), sp.numpy(), tc.numpy(), tp.numpy(), boxes.numpy(), t_cls.numpy(), topk)
    assert expected > 0.01
    assert MaskKDLoss(topk)(sc, sp, tc, tp, boxes, t_cls).item() == pytest.approx(expected, rel=1e-6)
    whole = torch.tensor([0.0, 0.0, 5.0, 6.0], dtype=torch.float64).expand(2, 7, 4)  # the whole 6×5 map
    assert MaskKDLoss(topk)(sc, sp, tc, tp, whole, t_cls).item() != pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("student_hw", [(6, 5), (3, 4)])
def test_proto_kd_matches_reference_and_ignores_scale_and_shift(student_hw):
    """PKD of the (adapted) student prototypes against the teacher's, the student's first resized to the teacher's
    6×5 where it is smaller (a lower-resolution student)."""
    s, t = rand(0, 2, 4, *student_hw), rand(1, 2, 4, 6, 5)
    resized = np.stack([[bilinear_reference(m, 6, 5) for m in img] for img in s.numpy()])
    expected = pkd_reference(resized, t.numpy())
    assert expected > 0.1
    assert ProtoKDLoss()(s, t).item() == pytest.approx(expected, rel=1e-6)
    gain, offset = torch.tensor([3.0, 0.2, 7.0, 1.0]).view(1, 4, 1, 1), torch.tensor([5.0, -1, 0, 2]).view(1, 4, 1, 1)
    assert ProtoKDLoss()(t * gain + offset, t).item() == pytest.approx(0.0, abs=1e-6)


def kpt_kd_reference(s: np.ndarray, t: np.ndarray, t_cls: np.ndarray) -> float:
    """Keypoint offsets of both models at the same anchor, L1 weighted by the teacher's visibility, plus the
    visibility's binary KL, averaged over keypoints, weighted by the teacher's top score."""
    n, j, d, a = s.shape
    total, weights = 0.0, 0.0
    for i in range(n):
        for k in range(a):
            per = 0.0
            for q in range(j):
                v = sigmoid(t[i, q, 2, k]) if d == 3 else 1.0
                per += v * (abs(s[i, q, 0, k] - t[i, q, 0, k]) + abs(s[i, q, 1, k] - t[i, q, 1, k]))
                if d == 3:
                    per += binary_kl_reference(sigmoid(t[i, q, 2, k]), sigmoid(s[i, q, 2, k]))
            w = max(sigmoid(t_cls[i, :, k]))
            total += w * per / j
            weights += w
    return total / max(1.0, weights)


@pytest.mark.parametrize("dims", [3, 2])
def test_kpt_kd_matches_reference(dims):
    s, t, t_cls = rand(0, 2, 4, dims, 6), rand(1, 2, 4, dims, 6), rand(2, 2, 3, 6)
    expected = kpt_kd_reference(s.numpy(), t.numpy(), t_cls.numpy())
    assert expected > 0.01
    assert KeypointKDLoss()(s, t, t_cls).item() == pytest.approx(expected, rel=1e-6)


def angle_kd_reference(s: np.ndarray, t: np.ndarray, t_cls: np.ndarray) -> float:
    n, _, a = s.shape
    total, weights = 0.0, 0.0
    for i in range(n):
        for k in range(a):
            w = max(sigmoid(t_cls[i, :, k]))
            total += w * 2 * math.sin(s[i, 0, k] - t[i, 0, k]) ** 2  # 1 − cos 2Δ = 2 sin²Δ
            weights += w
    return total / max(1.0, weights)


def test_angle_kd_matches_reference_and_is_periodic():
    s, t, t_cls = rand(0, 2, 1, 9), rand(1, 2, 1, 9), rand(2, 2, 3, 9)
    expected = angle_kd_reference(s.numpy(), t.numpy(), t_cls.numpy())
    assert expected > 0.01
    assert AngleKDLoss()(s, t, t_cls).item() == pytest.approx(expected, rel=1e-6)
    # a box turned by π is the same box; turned by π/2 (for a non-square box) the farthest one
    assert AngleKDLoss()(t + math.pi, t, t_cls).item() == pytest.approx(0.0, abs=1e-9)
    ones = torch.ones_like(t_cls) * 50  # every anchor weight 1
    assert AngleKDLoss()(t + math.pi / 2, t, ones).item() == pytest.approx(2.0, rel=1e-9)


@pytest.mark.parametrize(
    ("loss", "args"),
    [
        (MaskKDLoss(4), ((2, 3, 7), (2, 3, 4, 4), (2, 3, 7), (2, 3, 4, 4))),
        (KeypointKDLoss(), ((2, 4, 3, 7), (2, 4, 3, 7))),
        (AngleKDLoss(), ((2, 1, 7), (2, 1, 7))),
    ],
)
def test_task_losses_zero_when_equal_positive_otherwise_fp32(loss, args):
    t_cls = rand(5, 2, 3, 7)
    teacher = [rand(10 + i, *shape) for i, shape in enumerate(args)]
    student = [rand(20 + i, *shape) for i, shape in enumerate(args)]
    same = [x.clone() for x in teacher]

    # mask: the student's coefficients and prototypes, the teacher's, boxes over the whole 4×4 map
    def call(s, t):
        if isinstance(loss, MaskKDLoss):
            return loss(s[0], s[1], t[0], t[1], torch.tensor([0.0, 0, 4, 4]).expand(2, 7, 4), t_cls)
        return loss(s[0], t[0], t_cls)

    assert call(same, teacher).item() == pytest.approx(0.0, abs=1e-7)
    assert call(student, teacher).item() > 0
    assert call([x.half() for x in student], [x.half() for x in teacher]).dtype == torch.float32


def isrd_reference(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, r: int, big: np.ndarray) -> float:
    """ISRD written out: per output pixel (y, x) of channel c, the 1×1 conv's channel c·r² + (y mod r)·r + (x mod r)
    at input location (y div r, x div r) (pixel shuffle), bilinearly resized to the large image where the sizes
    differ, then the mean absolute difference to it."""
    n, _, h, w = x.shape
    decoded = np.empty((n, 3, h * r, w * r))
    for i in range(n):
        for c in range(3):
            for y in range(h * r):
                for xx in range(w * r):
                    k = c * r * r + (y % r) * r + xx % r
                    decoded[i, c, y, xx] = float(weight[k] @ x[i, :, y // r, xx // r]) + bias[k]
    if decoded.shape[-2:] != big.shape[-2:]:
        decoded = np.stack([[bilinear_reference(m, *big.shape[-2:]) for m in img] for img in decoded])
    return float(np.abs(decoded - big).mean())


@pytest.mark.parametrize(("hw", "r", "big_hw"), [((4, 3), 3, (12, 9)), ((4, 3), 2, (10, 7))])
def test_isrd_decodes_by_pixel_shuffle_and_matches_reference(hw, r, big_hw):
    """The decoder's 1×1 conv to 3r² channels and pixel shuffle, resized where r·h is not the large image's height
    (the student's size rounded to the stride), and ISRD's L1 to the large image; zero when it is reproduced."""
    torch.manual_seed(0)
    decoder = ImageDecoder(5, r).double()
    x, big = rand(0, 2, 5, *hw), rand(1, 2, 3, *big_hw).sigmoid()
    w, b = decoder.conv.weight.detach().view(3 * r * r, 5).numpy(), decoder.conv.bias.detach().numpy()
    expected = isrd_reference(x.numpy(), w, b, r, big.numpy())
    assert expected > 0.1
    image = decoder(x, big.shape[-2:])
    assert image.shape == big.shape
    assert ISRDLoss()(image, big).item() == pytest.approx(expected, rel=1e-6)
    assert ISRDLoss()(big, big).item() == 0
