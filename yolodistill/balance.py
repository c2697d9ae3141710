"""Loss balancing that does not depend on the regime: the distillation total set against the detection loss once.

A weight right for a student trained from scratch (large detection loss) may swamp a pretrained one (small detection
loss from the first step). With `balance` = r > 0, the recipe's weights keep their ratios to each other, but all of them
are multiplied by one scale, measured over the first `STEPS` training steps and then frozen:

    scale = r · Σ_steps L_det / Σ_steps Σ_i w_i · L_i

L_det the detection loss per image (Ultralytics' box, cls and dfl terms with their gains), w_i · L_i the recipe's
weighted distillation terms, so the distillation total starts at r times the detection loss whatever the student's
start. YOLO-Master's calibration of KD to 10 % of the task's gradient is the same idea on gradients; losses cost
nothing extra to read.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn


class Balance(nn.Module):
    """The scale above as a module: `scaled(detection, terms)` returns `terms` × scale, updating the scale on device
    (no host sync) during the first `STEPS` calls in training mode; `ratio` 0 returns `terms` unchanged."""

    STEPS = 50  # about one epoch of a few hundred images at batch 16: past the first, noisiest steps

    def __init__(self, ratio: float = 0.0):
        super().__init__()
        self.ratio = float(ratio)
        self.steps = 0  # a Python int: deciding whether to calibrate must not read the device
        self.register_buffer("sums", torch.zeros(2), persistent=False)  # Σ L_det, Σ weighted distillation
        self.register_buffer("scale", torch.ones(()), persistent=False)

    def scaled(self, detection: torch.Tensor, terms: torch.Tensor) -> torch.Tensor:
        """`terms` (K weighted distillation losses) × the scale; `detection` is the detection loss per image."""
        if self.ratio <= 0:
            return terms
        if self.training and self.steps < self.STEPS:
            self.sums += torch.stack([detection.detach().float(), terms.detach().float().sum()])
            self.steps += 1
            if self.steps == self.STEPS and dist.is_available() and dist.is_initialized():
                dist.all_reduce(self.sums)  # every DDP rank ends with one scale, from all ranks' batches
            self.scale = self.ratio * self.sums[0] / self.sums[1].clamp(min=1e-12)
        return terms * self.scale

    def state(self) -> dict[str, Any]:
        """What a resumed run needs to go on with the same scale (plain types and tensors: kept in checkpoints)."""
        return {
            "steps": self.steps,
            "sums": self.sums.detach().cpu().clone(),
            "scale": self.scale.detach().cpu().clone(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what `state` returned."""
        self.steps = int(state["steps"])
        self.sums.copy_(state["sums"])
        self.scale.copy_(state["scale"])
