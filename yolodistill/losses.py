"""Distillation losses, each returning a scalar.

Feature losses (CWD, mimic, PKD) take two equally long lists of N×C×H×W maps (`student_maps`, `teacher_maps`). Head
losses (classification KD, localization distillation, box KD, CrossKD) take the Detect head's raw outputs of both
models, flattened over all anchors of all levels: class logits N×K×A (`s_scores`, `t_scores`) and DFL box logits
N×4R×A (`s_boxes`, `t_boxes`) (K classes, A anchors, R = reg_max bins). Every argument is named as the input it is in
the table of losses (`registry.TABLE`), which the distiller calls them with, as keywords.

All are computed in float32 whatever the autocast dtype: softmax over thousands of locations and squared differences of
fp16 activations lose too much precision to be useful as training signals.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.utils.metrics import bbox_iou


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
            # from log-sigmoids rather than as a difference of two cross-entropies, which cancel to float32 noise (and
            # may go below 0) where the student is already close to the teacher
            kl = pt * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - pt) * (F.logsigmoid(-t) - F.logsigmoid(-s))
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
        w = t_scores.float().sigmoid().amax(dim=1)  # N×A
        return (w * kl).sum() * self.tau**2 / w.sum().clamp(min=1.0)


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
        if self.weights == "bckd":
            if s_scores is None:
                raise ValueError("weights='bckd' needs the student's class scores s_scores")
            w = (t_scores.float().sigmoid() - s_scores.detach().float().sigmoid()).abs().amax(dim=1)  # N×A
        else:
            w = t_scores.float().sigmoid().amax(dim=1)  # N×A
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
