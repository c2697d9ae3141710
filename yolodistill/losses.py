"""Distillation losses, each returning a scalar.

The task losses (MaskKDLoss, ProtoKDLoss, KeypointKDLoss, AngleKDLoss) take the outputs that the Segment, Pose and
OBB heads add to Detect's, on the same anchors (see each class). PseudoLabelLoss runs the student's own detection
criterion on the unlabelled images (`unlabeled=`), the teacher's confident boxes as their labels. ISRDLoss compares
the image the student's input conv predicts with the teacher's input image.

Feature losses (CWD, mimic, PKD) take two equally long lists of N×C×H×W maps (`student_maps`, `teacher_maps`). Head
losses (classification KD, localization distillation, box KD, CrossKD) take the Detect head's raw outputs of both
models, flattened over all anchors of all levels: class logits N×K×A (`s_scores`, `t_scores`) and DFL box logits
N×4R×A (`s_boxes`, `t_boxes`) (K classes, A anchors, R = reg_max bins). Every argument is named as the input it is in
the table of losses (`registry.TABLE`), which the distiller calls them with, as keywords.

All are computed in float32 whatever the autocast dtype: softmax over thousands of locations and squared differences of
fp16 activations lose too much precision to be useful as training signals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.utils.metrics import bbox_iou
from ultralytics.utils.nms import TorchNMS
from ultralytics.utils.ops import crop_mask, xyxy2xywh

from .alignment import align


class _LevelLoss(nn.Module):
    """Sum over levels of `weight_l * level_loss(s_l, t_l)` (with per-level masks m_l: `level_loss(s_l, t_l, m_l)`);
    subclasses define `level_loss`."""

    def __init__(self, level_weights: Sequence[float] | None = None):
        super().__init__()
        self.level_weights = None if level_weights is None else [float(w) for w in level_weights]

    def level_loss(self, s: torch.Tensor, t: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, student_maps: Sequence[torch.Tensor], teacher_maps: Sequence[torch.Tensor]) -> torch.Tensor:
        return self._sum(student_maps, teacher_maps)

    def _sum(self, student, teacher, masks: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """The level-weighted sum, after checking that levels, level weights and map shapes agree."""
        if len(student) != len(teacher):
            raise ValueError(f"{len(student)} student levels but {len(teacher)} teacher levels")
        if masks is not None and len(masks) != len(student):
            raise ValueError(f"{len(student)} student levels, {len(teacher)} teacher levels, {len(masks)} masks")
        weights = self.level_weights or [1.0] * len(student)
        if len(weights) != len(student):
            raise ValueError(f"{len(weights)} level weights for {len(student)} levels")
        total = None
        for w, s, t, m in zip(weights, student, teacher, masks or [None] * len(student)):
            if s.shape != t.shape:
                raise ValueError(f"student map {tuple(s.shape)} and teacher map {tuple(t.shape)} differ")
            term = w * self.level_loss(s.float(), t.float(), None if m is None else m.float())
            total = term if total is None else total + term
        return total


class _MaskableLoss(_LevelLoss):
    """A per-element squared error that may be weighted per location: with masks m (one N×1×H×W map per level, e.g.
    the teacher's top class score), each level's mean becomes Σ m·e / (C · max(1, Σ m)), e the N×C×H×W errors."""

    def errors(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def level_loss(self, s: torch.Tensor, t: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        e = self.errors(s, t)
        return e.mean() if m is None else (e * m).sum() / (s.shape[1] * m.sum().clamp(min=1.0))

    def forward(self, student_maps, teacher_maps, masks: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        return self._sum(student_maps, teacher_maps, masks)


class CWDLoss(_LevelLoss):
    """Channel-wise distillation (Shu et al., ICCV 2021).

    Per level, with maps of shape N×C×H×W and temperature τ, each of the N·C channel maps becomes a distribution over
    its H·W locations: p = softmax(y / τ). Then

        L = τ² / (N·C) · Σ_{n,c} Σ_i p^T_{n,c,i} · (log p^T_{n,c,i} − log p^S_{n,c,i})

    i.e. KL(teacher ‖ student), which makes the student copy where each teacher channel is most active. The total is
    the (level-weighted) sum over levels. Zero when student equals teacher.
    """

    def __init__(self, tau: float = 1.0, level_weights: Sequence[float] | None = None):
        super().__init__(level_weights)
        self.tau = float(tau)

    def level_loss(self, s: torch.Tensor, t: torch.Tensor, m: None = None) -> torch.Tensor:
        n, c = s.shape[:2]
        log_ps = F.log_softmax(s.flatten(2) / self.tau, dim=-1)
        log_pt = F.log_softmax(t.flatten(2) / self.tau, dim=-1)
        kl = (log_pt.exp() * (log_pt - log_ps)).sum()
        return kl * (self.tau**2 / (n * c))


class PKDLoss(_MaskableLoss):
    """Pearson-correlation feature distillation (PKD, Cao et al., NeurIPS 2022).

    Per level, each channel of both N×C×H×W maps is standardised over its N·H·W values (zero mean, unit variance),
    ŷ = (y − μ_c) / σ_c, then L = mean over all N·C·H·W elements of (ŝ − t̂)², which equals 2·(1 − r) averaged over
    channels, r being the Pearson correlation of the two channels. Magnitude differences between teacher and student
    features no longer swamp the gradient. The total is the (level-weighted) sum over levels.
    """

    @staticmethod
    def standardise(y: torch.Tensor) -> torch.Tensor:
        mean = y.mean(dim=(0, 2, 3), keepdim=True)
        var = y.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
        return (y - mean) * torch.rsqrt(var + 1e-6)

    def errors(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (self.standardise(s) - self.standardise(t)) ** 2


class MimicLoss(_MaskableLoss):
    """Feature imitation (FitNets hint loss): per level L = mean over all N·C·H·W elements of (s − t)².

    The total is the (level-weighted) sum over levels. Zero when student equals teacher.
    """

    def errors(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (s - t) ** 2


def binary_kl(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Elementwise binary KL(σ(t) ‖ σ(s)) of logits: p·(log p − log q) + (1−p)·(log(1−p) − log(1−q)), p = σ(t),
    q = σ(s). From log-sigmoids rather than as a difference of two cross-entropies, which cancel to float32 noise (and
    may go below 0) where the student is already close to the teacher."""
    pt = t.sigmoid()
    return pt * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - pt) * (F.logsigmoid(-t) - F.logsigmoid(-s))


def teacher_weighted(per_anchor: torch.Tensor, t_scores: torch.Tensor) -> torch.Tensor:
    """Σ_{n,a} w_{n,a} · ℓ_{n,a} / max(1, Σ_{n,a} w_{n,a}) with w_{n,a} = max_k σ(t^cls_{n,k,a}), the teacher's top
    class score: the anchor weighting of LD and of the task losses (ℓ N×A, t_scores N×K×A), so background anchors, whose
    boxes, masks, keypoints and angles mean nothing, do not dominate."""
    w = t_scores.float().sigmoid().amax(dim=1)  # N×A
    return (w * per_anchor).sum() / w.sum().clamp(min=1.0)


def _check_boxes(s_boxes: torch.Tensor, t_boxes: torch.Tensor) -> None:
    if s_boxes.shape != t_boxes.shape:
        raise ValueError(f"student boxes {tuple(s_boxes.shape)} and teacher boxes {tuple(t_boxes.shape)} differ")


class ClassKDLoss(nn.Module):
    """Dense classification distillation on the Detect head's class logits (as in BCKD, ICCV 2023).

    Student and teacher logits s, t of shape N×K×A become per-class probabilities p = σ(x / τ) at every anchor of every
    level. With an optional per-anchor weight w_{n,a} = max_k p^T_{n,k,a} (`score_weighted`, else w = 1):

        L = τ² · Σ_{n,k,a} w_{n,a} · KL(p^T_{n,k,a} ‖ p^S_{n,k,a}) / max(1, Σ_{n,k,a} p^T_{n,k,a})

    with the binary KL(p ‖ q) = p·log(p/q) + (1−p)·log((1−p)/(1−q)) (binary cross-entropy with soft targets minus
    the targets' entropy: same gradient, zero when student equals teacher, never below 0). The normaliser is the
    teacher's soft count of positives, as Ultralytics divides its classification loss by the sum of target scores, so a
    weight of 0.5 puts this term on the scale of the detection loss's `cls` gain.

    With `beta` = β > 0 the per-element term is BCKD's quality-focal one instead (as its and CrossKD's configs use it,
    β = 1): the binary cross-entropy with soft targets times |p^S − p^T|^β,

        ℓ = −(p^T·log p^S + (1−p^T)·log(1−p^S)) · |p^S − p^T|^β

    which leaves the anchors where the student already agrees with the teacher almost out (the factor is not detached,
    as in Quality Focal Loss). Same weights and normaliser as above.
    """

    def __init__(self, tau: float = 1.0, score_weighted: bool = False, beta: float = 0.0):
        super().__init__()
        self.tau = float(tau)
        self.score_weighted = bool(score_weighted)
        self.beta = float(beta)

    def forward(self, s_scores: torch.Tensor, t_scores: torch.Tensor) -> torch.Tensor:
        if s_scores.shape != t_scores.shape:
            raise ValueError(
                f"student scores {tuple(s_scores.shape)} and teacher scores {tuple(t_scores.shape)} differ"
            )
        s, t = s_scores.float() / self.tau, t_scores.float() / self.tau
        pt = t.sigmoid()
        if self.beta > 0:
            kl = F.binary_cross_entropy_with_logits(s, pt, reduction="none") * (s.sigmoid() - pt).abs().pow(self.beta)
        else:
            kl = binary_kl(s, t)
        if self.score_weighted:
            kl = kl * pt.amax(dim=1, keepdim=True)
        return kl.sum() * self.tau**2 / pt.sum().clamp(min=1.0)


class LDLoss(nn.Module):
    """Localization distillation (Zheng et al., CVPR 2022) on the DFL box distributions.

    Box logits N×4R×A (R bins for each of the 4 box sides, as Ultralytics' Detect head lays them out) become, per side,
    distributions over the bins: p = softmax(x / τ). Each anchor is weighted by the teacher's highest class score
    w_{n,a} = max_k σ(t^cls_{n,k,a}), so background anchors, whose boxes mean nothing, do not dominate:

        L = τ² · Σ_{n,a} w_{n,a} · ¼ Σ_side KL(p^T_{n,side,a} ‖ p^S_{n,side,a}) / max(1, Σ_{n,a} w_{n,a})
    """

    def __init__(self, tau: float = 1.0):
        super().__init__()
        self.tau = float(tau)

    def forward(self, s_boxes: torch.Tensor, t_boxes: torch.Tensor, t_scores: torch.Tensor) -> torch.Tensor:
        _check_boxes(s_boxes, t_boxes)
        n, _, a = s_boxes.shape
        log_ps = F.log_softmax(s_boxes.float().view(n, 4, -1, a) / self.tau, dim=2)
        log_pt = F.log_softmax(t_boxes.float().view(n, 4, -1, a) / self.tau, dim=2)
        kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim=2).mean(dim=1)  # N×A
        return teacher_weighted(kl, t_scores) * self.tau**2


class BoxKDLoss(nn.Module):
    """Box distillation on decoded boxes (the localization term of BCKD, ICCV 2023).

    Box logits N×4R×A decode, per side, to the expected distance d = Σ_r r · softmax(x)_r over the R DFL bins (in grid
    cells, as Ultralytics' DFL decodes them): the box (−d_left, −d_top, d_right, d_bottom) around its anchor point.
    Each anchor is weighted by the teacher's highest class score w_{n,a} = max_k σ(t^cls_{n,k,a}) (`weights="teacher"`)
    or, as BCKD weights it (`weights="bckd"`), by the largest disagreement of the two models' class scores
    w_{n,a} = max_k |σ(t^cls_{n,k,a}) − σ(s^cls_{n,k,a})|, detached (the weight steers, it is not a target):

        L = Σ_{n,a} w_{n,a} · (1 − GIoU(b^S_{n,a}, b^T_{n,a})) / max(1, Σ_{n,a} w_{n,a})

    GIoU is invariant to translation and scale, so neither the anchor point nor the level's stride enters. Where LD
    matches the two distributions bin by bin, this matches only the boxes they decode to.
    """

    WEIGHTS = ("teacher", "bckd")

    def __init__(self, weights: str = "teacher"):
        super().__init__()
        if weights not in self.WEIGHTS:
            raise ValueError(f"weights={weights!r}, expected one of {self.WEIGHTS}")
        self.weights = weights

    def forward(
        self,
        s_boxes: torch.Tensor,
        t_boxes: torch.Tensor,
        t_scores: torch.Tensor,
        s_scores: torch.Tensor | None = None,
    ) -> torch.Tensor:
        _check_boxes(s_boxes, t_boxes)
        giou = bbox_iou(self.decode(s_boxes), self.decode(t_boxes), xywh=False, GIoU=True).squeeze(-1)  # N×A
        if self.weights == "teacher":
            return teacher_weighted(1.0 - giou, t_scores)
        if s_scores is None:
            raise ValueError("weights='bckd' needs the student's class scores s_scores")
        w = (t_scores.float().sigmoid() - s_scores.detach().float().sigmoid()).abs().amax(dim=1)  # N×A
        return (w * (1.0 - giou)).sum() / w.sum().clamp(min=1.0)

    @staticmethod
    def decode(x: torch.Tensor) -> torch.Tensor:
        """N×4R×A box logits → N×A×4 boxes (x1, y1, x2, y2) relative to their anchor points, in grid cells."""
        n, _, a = x.shape
        p = x.float().view(n, 4, -1, a).softmax(dim=2)
        d = (p * torch.arange(p.shape[2], device=x.device, dtype=p.dtype).view(1, 1, -1, 1)).sum(dim=2)  # N×4×A
        return torch.cat([-d[:, :2], d[:, 2:]], dim=1).transpose(1, 2)


class CrossKDLoss(nn.Module):
    """CrossKD's loss (Wang et al., CVPR 2024) on the cross-head predictions (`crosshead.CrossHead`: the student's head
    features run through the rest of the teacher's head), matched to the teacher's own predictions:

        L = ClassKD_τc(s_cls^cross, t_cls) + LD_τl(s_box^cross, t_box; w = max_k σ(t_cls))

    with class logits N×K×A and DFL box logits N×4R×A on the teacher's anchors (both terms as in `ClassKDLoss` and
    `LDLoss`, the class term with the quality-focal factor of `cls_beta` as CrossKD's configs use it; for a head with
    one bin per side, R = 1, the LD term is 0).
    """

    def __init__(self, cls_tau: float = 1.0, ld_tau: float = 1.0, cls_beta: float = 0.0):
        super().__init__()
        self.cls = ClassKDLoss(cls_tau, beta=cls_beta)
        self.ld = LDLoss(ld_tau)

    def forward(
        self, cross_scores: torch.Tensor, cross_boxes: torch.Tensor, t_scores: torch.Tensor, t_boxes: torch.Tensor
    ) -> torch.Tensor:
        return self.cls(cross_scores, t_scores) + self.ld(cross_boxes, t_boxes, t_scores)


class MaskKDLoss(nn.Module):
    """Mask distillation for segmentation students, at the anchors the teacher is confident about, inside its boxes.

    A Segment head predicts, per anchor, M mask coefficients c (N×M×A) and, per image, M prototype maps P (N×M×h×w);
    an anchor's mask logits are z_{n,a} = Σ_m c_{n,m,a} · P_{n,m} (h×w), its mask σ(z), as Ultralytics' segmentation
    loss and predictor form them. Teacher and student may have different M and prototype sizes: each model's own
    mask is formed, and the student's is resized bilinearly to the teacher's H×W where they differ (a lower-resolution
    student). With the teacher's top class score w_{n,a} = max_k σ(t^cls_{n,k,a}) as the anchor weight (as LD has it),
    per image the `topk` anchors of largest w, S_n (all A when fewer), and the binary KL per pixel of the soft targets
    over the pixels B_{n,a} inside the teacher's box at that anchor:

        ℓ_{n,a} = Σ_{p∈B_{n,a}} KL_b(σ(z^T_{n,a,p}) ‖ σ(z^S_{n,a,p})) / max(1, |B_{n,a}|)
        L = Σ_n Σ_{a∈S_n} w_{n,a} · ℓ_{n,a} / max(1, Σ_n Σ_{a∈S_n} w_{n,a})

    Inside the box, because that is where a mask means something: Ultralytics trains a mask only inside its box (the
    segmentation loss crops to it, normalised by the box area) and crops predicted masks to their boxes, so outside
    it the teacher's logits were never trained. B_{n,a} is Ultralytics' own crop (`crop_mask`: pixel x1 ≤ col < x2,
    y1 ≤ row < y2). Only `topk` anchors per image, because a mask per anchor is an H×W map (A·H·W values for all
    anchors: 8400·160² at 640 px).

    Inputs: s_mask_coeffs N×M_s×A, s_protos N×M_s×h×w, t_mask_coeffs N×M_t×A, t_protos N×M_t×H×W, t_mask_boxes N×A×4
    (the teacher's boxes, x1 y1 x2 y2 in pixels of its prototype maps: `distiller.mask_boxes`), t_scores N×K×A (the
    student's coefficients on the teacher's anchors).
    """

    def __init__(self, topk: int = 32):
        super().__init__()
        self.topk = int(topk)

    def forward(
        self,
        s_mask_coeffs: torch.Tensor,
        s_protos: torch.Tensor,
        t_mask_coeffs: torch.Tensor,
        t_protos: torch.Tensor,
        t_mask_boxes: torch.Tensor,
        t_scores: torch.Tensor,
    ) -> torch.Tensor:
        if s_mask_coeffs.shape[-1] != t_mask_coeffs.shape[-1]:
            raise ValueError(f"student anchors {s_mask_coeffs.shape[-1]} and teacher anchors {t_mask_coeffs.shape[-1]}")
        w = t_scores.float().sigmoid().amax(dim=1)  # N×A
        w, idx = w.topk(min(self.topk, w.shape[1]), dim=1)  # N×k

        def masks(coeffs: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:  # N×k×h×w mask logits
            picked = coeffs.float().gather(2, idx[:, None].expand(-1, coeffs.shape[1], -1))  # N×M×k
            return torch.einsum("nmk,nmhw->nkhw", picked, protos.float())

        zt, zs = masks(t_mask_coeffs, t_protos), masks(s_mask_coeffs, s_protos)
        if zs.shape[-2:] != zt.shape[-2:]:
            zs = F.interpolate(zs, size=zt.shape[-2:], mode="bilinear", align_corners=False)
        boxes = t_mask_boxes.float().gather(1, idx[..., None].expand(-1, -1, 4))  # N×k×4
        inside = crop_mask(torch.ones_like(zt).flatten(0, 1), boxes.flatten(0, 1)).view_as(zt)
        kl = (binary_kl(zs, zt) * inside).sum(dim=(2, 3)) / inside.sum(dim=(2, 3)).clamp(min=1.0)  # N×k
        return (w * kl).sum() / w.sum().clamp(min=1.0)


class ProtoKDLoss(PKDLoss):
    """Prototype-map distillation for segmentation students: PKDLoss on the Segment heads' prototype maps.

    The student's M_s prototypes P^S (N×M_s×h×w) come through a trainable 1×1 adapter to the teacher's M_t
    (`s_protos_adapted`, N×M_t×h×w, `Distiller`'s last adapter), because two models' prototypes need agree only up to
    a linear map of the basis (each mask is coefficients times prototypes), which the adapter learns; resized
    bilinearly to the teacher's H×W where they differ (a lower-resolution student). Each channel of both is
    standardised over its N·H·W values, ŷ = (y − μ_m) / σ_m, and

        L = mean over all N·M_t·H·W elements of (P̂^S − P̂^T)² = 1/M_t · Σ_m 2·(1 − r_m)

    r_m the Pearson correlation of channel m: scale-free, so one weight fits teachers whose prototypes differ in
    magnitude. Inputs: s_protos_adapted N×M_t×h×w, t_protos N×M_t×H×W.
    """

    def forward(self, s_protos_adapted: torch.Tensor, t_protos: torch.Tensor) -> torch.Tensor:
        return self._sum(align([s_protos_adapted], [t_protos]), [t_protos])


class KeypointKDLoss(nn.Module):
    """Keypoint distillation for pose students, per anchor, weighted by the teacher's top class score.

    A Pose head predicts, per anchor, J keypoints of D values (N×J×D×A here): x, y and, with D = 3, a visibility
    logit. x and y come decoded by each model's own head as offsets from the anchor point in grid cells of the anchor's
    level (`distiller.keypoint_offsets`: Ultralytics' Pose decodes 2·x̂ − ½, YOLO26's x̂), so the L1 distance is in
    grid cells, scale-free across levels as the DFL boxes are. Each keypoint's distance counts as much as the teacher
    sees it (v = σ(t^vis); 1 for D = 2), and its visibility logits distil as soft targets:

        ℓ_{n,a} = 1/J · Σ_j [ v_{n,j,a} · (|x^S − x^T| + |y^S − y^T|) + KL_b(σ(t^vis_{n,j,a}) ‖ σ(s^vis_{n,j,a})) ]
        L = Σ_{n,a} w_{n,a} · ℓ_{n,a} / max(1, Σ_{n,a} w_{n,a}),   w_{n,a} = max_k σ(t^cls_{n,k,a})

    (no KL term for D = 2). Inputs: s_kpts, t_kpts N×J×D×A, t_scores N×K×A.
    """

    def forward(self, s_kpts: torch.Tensor, t_kpts: torch.Tensor, t_scores: torch.Tensor) -> torch.Tensor:
        if s_kpts.shape != t_kpts.shape:
            raise ValueError(f"student keypoints {tuple(s_kpts.shape)} and teacher keypoints {tuple(t_kpts.shape)}")
        s, t = s_kpts.float(), t_kpts.float()
        dist = (s[:, :, :2] - t[:, :, :2]).abs().sum(dim=2)  # N×J×A, grid cells
        if s.shape[2] > 2:
            dist = dist * t[:, :, 2].sigmoid() + binary_kl(s[:, :, 2], t[:, :, 2])
        return teacher_weighted(dist.mean(dim=1), t_scores)


class AngleKDLoss(nn.Module):
    """Angle distillation for oriented-box students, per anchor, weighted by the teacher's top class score.

    An OBB head predicts one angle θ per anchor (radians, N×1×A; Ultralytics' rotated boxes repeat with period π).
    The periodic distance 1 − cos 2(θ^S − θ^T) = 2·sin²(θ^S − θ^T) is 0 for equal boxes (also θ^S = θ^T ± π), 2 for
    perpendicular ones, smooth everywhere (no wrap-around jump as |Δθ| has):

        L = Σ_{n,a} w_{n,a} · (1 − cos 2(θ^S_{n,a} − θ^T_{n,a})) / max(1, Σ_{n,a} w_{n,a})

    with w_{n,a} = max_k σ(t^cls_{n,k,a}).
    The boxes' sides distil through LD (their DFL distances are the rotated box's). Inputs: s_angles, t_angles
    N×1×A, t_scores N×K×A (the student's angles on the teacher's anchors).
    """

    def forward(self, s_angles: torch.Tensor, t_angles: torch.Tensor, t_scores: torch.Tensor) -> torch.Tensor:
        if s_angles.shape != t_angles.shape:
            raise ValueError(f"student angles {tuple(s_angles.shape)} and teacher angles {tuple(t_angles.shape)}")
        return teacher_weighted(1 - torch.cos(2 * (s_angles.float() - t_angles.float())).mean(dim=1), t_scores)


class ISRDLoss(nn.Module):
    """Input spatial representation distillation (Pixel Distillation, ISRD) for a lower-resolution student: the
    student's input conv, through a trainable decoder (`adapters.ImageDecoder`), predicts the large image the teacher
    sees, so that its first layer learns to keep the spatial detail the small image still holds:

        L = mean over all N·3·H_t·W_t elements of |Î − I|

    Î the decoded image (`s_image`), I the teacher's input (`teacher_img`, values in [0, 1]), both N×3×H_t×W_t. It
    reads no teacher output, so it works beside any teacher loss and at any resolution (at equal ones the student's
    input conv reconstructs its own input, an auto-encoder).
    """

    def forward(self, s_image: torch.Tensor, teacher_img: torch.Tensor) -> torch.Tensor:
        return (s_image.float() - teacher_img.float()).abs().mean()


class PseudoLabelLoss(nn.Module):
    """The student's own detection loss on the unlabelled images of the batch, the teacher's confident boxes as their
    labels (hard pseudo-labels: self-training, or auto-labelling the images with the big model, in the training step).

    On each of the U unlabelled images, the teacher's anchors whose top class score max_k σ(t_k) ≥ `conf`, after NMS
    (IoU > `iou` within a class), are its labels: the class argmax_k σ(t_k), the teacher's decoded box. Then

        L = (1/U) · D(student outputs on the U images, those labels)

    with D Ultralytics' detection criterion (`box_criterion`: its task-aligned assignment, box, class and DFL terms
    with their gains, times U), so with weight 1 an unlabelled image counts as much as a labelled one in the
    detection loss. An image on which the teacher is confident about nothing is background to the student (the
    teacher's judgement, not a missing label). The labelled images keep their own labels and are not read.

    Inputs: s_unlabelled, the student's raw head outputs of the U images (boxes U×4R×A, scores U×K×A, feats);
    t_unlabelled_boxes U×A×4, the teacher's boxes x1 y1 x2 y2 normalised to the image (training images are square,
    so IoU is that of pixels); t_unlabelled_scores U×K×A, its class logits. Selecting the boxes counts them (on CUDA
    a host sync, as NMS is), so the term costs one sync a step where it is on, and nothing in runs without it.
    """

    def __init__(self, conf: float = 0.5, iou: float = 0.7):
        super().__init__()
        self.conf, self.iou = float(conf), float(iou)

    def forward(
        self,
        s_unlabelled: dict[str, Any],
        t_unlabelled_boxes: torch.Tensor,
        t_unlabelled_scores: torch.Tensor,
        box_criterion: Callable[[dict[str, Any], dict[str, torch.Tensor]], tuple[torch.Tensor, Any]],
    ) -> torch.Tensor:
        u, k, _ = t_unlabelled_scores.shape
        if u == 0:  # a batch without unlabelled images (validation, or no unlabeled=)
            return t_unlabelled_scores.new_zeros((), dtype=torch.float32)
        top, cls = t_unlabelled_scores.detach().float().sigmoid().max(dim=1)  # U×A
        img, anchor = (top >= self.conf).nonzero(as_tuple=True)
        boxes = t_unlabelled_boxes.detach().float()[img, anchor].clamp(0.0, 1.0)  # M×4
        cls = cls[img, anchor]
        # one NMS over every image and class: each (image, class) group shifted apart by 2 (boxes lie in [0, 1])
        keep = TorchNMS.nms(boxes + (img * k + cls).float()[:, None] * 2.0, top[img, anchor], self.iou)
        keep = keep.sort().values  # NMS orders by score; the criterion wants the labels in image order
        labels = {"batch_idx": img[keep].float(), "cls": cls[keep].float()[:, None], "bboxes": xyxy2xywh(boxes[keep])}
        loss, _ = box_criterion(s_unlabelled, labels)
        return loss.sum() / u
