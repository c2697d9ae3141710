"""Feature-distillation losses: each takes two equally long lists of N×C×H×W maps (student, teacher), returns a scalar.

Both losses are computed in float32 whatever the autocast dtype: softmax over thousands of locations and squared
differences of fp16 activations lose too much precision to be useful as training signals.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class _LevelLoss(nn.Module):
    """Sum over levels of `weight_l * level_loss(s_l, t_l)`; subclasses define `level_loss`."""

    def __init__(self, level_weights: Sequence[float] | None = None):
        super().__init__()
        self.level_weights = None if level_weights is None else [float(w) for w in level_weights]

    def level_loss(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(student) != len(teacher):
            raise ValueError(f"{len(student)} student levels but {len(teacher)} teacher levels")
        weights = self.level_weights or [1.0] * len(student)
        if len(weights) != len(student):
            raise ValueError(f"{len(weights)} level weights for {len(student)} levels")
        total = None
        for w, s, t in zip(weights, student, teacher):
            if s.shape != t.shape:
                raise ValueError(f"student map {tuple(s.shape)} and teacher map {tuple(t.shape)} differ")
            term = w * self.level_loss(s.float(), t.float())
            total = term if total is None else total + term
        return total


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

    def level_loss(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        n, c = s.shape[:2]
        log_ps = F.log_softmax(s.flatten(2) / self.tau, dim=-1)
        log_pt = F.log_softmax(t.flatten(2) / self.tau, dim=-1)
        kl = (log_pt.exp() * (log_pt - log_ps)).sum()
        return kl * (self.tau**2 / (n * c))


class MimicLoss(_LevelLoss):
    """Feature imitation (FitNets hint loss): per level L = mean over all N·C·H·W elements of (s − t)².

    The total is the (level-weighted) sum over levels. Zero when student equals teacher.
    """

    def level_loss(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(s, t)
