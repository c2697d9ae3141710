"""The distillation data flow in one place: teacher → taps → adapters → alignment → losses → weighted sum."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .adapters import build_adapters
from .alignment import align
from .losses import CWDLoss, MimicLoss
from .recipes import Recipe
from .taps import FeatureTaps


class Distiller(nn.Module):
    """Frozen teacher, its taps, the trainable adapters and the losses of one recipe (MMRazor's "distiller").

    The student stays outside: `attach(student)` hooks its tapped layers and wraps its detection criterion, so the
    student's own forward fills the taps and its loss call adds the distillation terms.
    """

    def __init__(
        self,
        teacher: nn.Module,
        recipe: Recipe,
        teacher_layers: Sequence[int],
        student_layers: Sequence[int],
        teacher_channels: Sequence[int],
        student_channels: Sequence[int],
    ):
        super().__init__()
        self.teacher = teacher
        self.recipe = recipe
        self.adapters = build_adapters(student_channels, teacher_channels, recipe.adapter)
        self.losses = nn.ModuleDict()
        if recipe.cwd > 0:
            self.losses["cwd"] = CWDLoss(recipe.cwd_tau, recipe.levels)
        if recipe.mimic > 0:
            self.losses["mimic"] = MimicLoss(recipe.levels)
        self.weights = recipe.weights()
        self.student_layers = list(student_layers)
        # The teacher never runs the layers after its last tap (its Detect head): no loss uses their outputs.
        self.teacher_stop = max(teacher_layers)
        self.teacher_taps = FeatureTaps(teacher, teacher_layers)
        self.student_taps: FeatureTaps | None = None
        self._student: nn.Module | None = None

    def train(self, mode: bool = True) -> Distiller:
        """Adapters follow `mode`; the teacher stays in eval mode (BatchNorm running statistics)."""
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, teacher_img: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Distillation terms for the batch the student has just run on.

        Args:
            teacher_img: N×3×H_t×W_t, the batch at the teacher's resolution (the student's own input when equal).

        Returns:
            A K-vector of weighted losses (K = losses in the recipe, in `weights` order) and the same values detached,
            keyed `<loss>_loss` for Ultralytics' progress bar and results.csv.
        """
        with torch.no_grad():
            self.teacher.predict(teacher_img, embed=[self.teacher_stop])  # `embed` ends the forward at that layer
        teacher = self.teacher_taps.collect()
        student = [a(s) for a, s in zip(self.adapters, self.student_taps.collect())]
        student = align(student, teacher)
        terms = torch.stack([w * self.losses[name](student, teacher) for name, w in self.weights.items()])
        return terms, dict(zip((f"{name}_loss" for name in self.weights), terms.detach()))

    def attach(self, student: nn.Module) -> None:
        """Hook the student's tapped layers and wrap its detection criterion with the distillation terms."""
        self.detach()
        self._student = student
        self.student_taps = FeatureTaps(student, self.student_layers)
        detection = getattr(student, "criterion", None) or student.init_criterion()
        student.criterion = DistillationCriterion(detection, self)

    def detach(self) -> None:
        """Undo `attach`: remove the hooks and give the student back its plain detection criterion."""
        if self.student_taps is not None:
            self.student_taps.remove()
            self.student_taps = None
        if self._student is not None:
            self._student.criterion = self._student.criterion.detection
            self._student = None


class DistillationCriterion:
    """Ultralytics criterion wrapper: detection loss followed by the distillation terms.

    Ultralytics' criteria return (loss vector × batch size, detached items); the distillation terms are appended and
    scaled by the batch size the same way, so the trainer's `loss.sum()` is the total loss.
    """

    def __init__(self, detection, distiller: Distiller):
        self.detection = detection
        self.distiller = distiller

    def __call__(self, preds, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, items = self.detection(preds, batch)
        terms, distill_items = self.distiller(batch.get("teacher_img", batch["img"]))
        return torch.cat([loss.view(-1), terms * batch["img"].shape[0]]), {**items, **distill_items}

    def update(self) -> None:
        """Forward Ultralytics' per-epoch criterion update (end-to-end heads schedule their loss weights)."""
        if hasattr(self.detection, "update"):
            self.detection.update()
