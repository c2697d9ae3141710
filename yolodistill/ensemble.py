"""Several teachers as one (multi-teacher distillation, `teacher=[a.pt,b.pt]`): their Detect-head outputs averaged as
probabilities, so every head loss reads the ensemble exactly as it reads one teacher.

The members' class scores are averaged as probabilities and their box distributions as distributions; what the losses
receive are logits of those averages (at τ = 1 they give back the averaged probabilities exactly):

    scores  N×K×A:   t = logit( (1/M) Σ_m σ(t_m) )
    boxes   N×4R×A:  t = log( (1/M) Σ_m softmax_R(t_m) )      per box side, over its R DFL bins

Members must share strides (their anchors line up) and DFL bins; feature losses and CrossKD read one teacher's
layers and stay with a single teacher (checks.py refuses them for an ensemble).
"""

from __future__ import annotations

import torch

EPS = 1e-6  # keeps the logits finite where every member is certain


def mean_scores(scores: list[torch.Tensor]) -> torch.Tensor:
    """Class logits (each N×K×A) → the logits of their mean sigmoid probability, N×K×A, in float32."""
    p = torch.stack([s.float().sigmoid() for s in scores]).mean(0).clamp(EPS, 1 - EPS)
    return torch.log(p) - torch.log1p(-p)


def mean_boxes(boxes: list[torch.Tensor], reg_max: int) -> torch.Tensor:
    """DFL box logits (each N×4R×A, R = `reg_max` bins per side) → the logits of their mean distribution, N×4R×A."""
    n, _, a = boxes[0].shape
    p = torch.stack([b.float().view(n, 4, reg_max, a).softmax(2) for b in boxes]).mean(0)
    return p.clamp_min(EPS).log().view(n, 4 * reg_max, a)
