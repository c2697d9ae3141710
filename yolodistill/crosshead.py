"""CrossKD (Wang et al., CVPR 2024): the student's head features finish their way through the teacher's frozen head.

An Ultralytics Detect head has, per level, a box branch and a class branch, each a sequence of blocks (YOLOv8: Conv,
Conv, then a 1×1 Conv2d predictor; YOLO11's class branch uses depthwise blocks). CrossKD cuts every branch after its
first block: the student's map there (through a 1×1 adapter where the widths differ) enters the teacher's branch at its
second block, and these "cross" predictions are matched to the teacher's own (`losses.CrossKDLoss`). The student's own
predictors then answer to the ground truth only, instead of to the ground truth and the teacher at once, and its head
features learn from the teacher through the teacher's own decision layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .adapters import adapter
from .alignment import align
from .taps import OutputTaps

CUT = 1  # blocks of each branch the student runs before the teacher's take over


def branches(head: nn.Module) -> list[nn.Sequential]:
    """The dense (one-to-many) branches of a Detect head: its box branches, one per level, then its class branches."""
    heads = head.one2many
    return [*heads["box_head"], *heads["cls_head"]]


def cut_channels(head: nn.Module) -> tuple[list[int], list[int]]:
    """Per branch (as `branches` orders them), the channels out of the blocks before the cut and into those after."""
    out, into = [], []
    for branch in branches(head):
        out.append([m for m in branch[:CUT].modules() if isinstance(m, nn.Conv2d)][-1].out_channels)
        into.append(next(m for m in branch[CUT:].modules() if isinstance(m, nn.Conv2d)).in_channels)
    return out, into


def cross_adapters(teacher_head: nn.Module, student_channels: Sequence[int], kind: str = "conv") -> list[nn.Module]:
    """Per branch, the student's map at the cut → the teacher's width: a 1×1 adapter (`adapters.adapter`) where the
    widths differ; equal widths pass unchanged, as in the paper, whose student and teacher heads share their width."""
    _, teacher_channels = cut_channels(teacher_head)
    return [nn.Identity() if cs == ct else adapter(cs, ct, kind) for cs, ct in zip(student_channels, teacher_channels)]


class CrossHead:
    """The teacher's head after the cut, fed with the student's maps at the cut.

    Holds no parameters of its own: the teacher's layers stay frozen and the adapters (`cross_adapters`) live with the
    distiller's other adapters, which the trainer optimises and checkpoints.

    With `align_scale` (CrossKD's official code does this), each student map at the cut, once adapted and on the
    teacher's grid, is standardised per channel over its N·H·W values and given the teacher's own map's per-channel
    mean and standard deviation there: x̂ = (x − μ_x) / (σ_x + 1e-6) · σ_T + μ_T, so the teacher's layers receive inputs
    on the scale they were trained on. The teacher's maps at the cut are then recorded with hooks of their own.
    """

    def __init__(self, teacher_head: nn.Module, adapters: Sequence[nn.Module], align_scale: bool = False):
        self.adapters = list(adapters)
        self.tails = [branch[CUT:] for branch in branches(teacher_head)]
        self.taps: OutputTaps | None = None
        self.teacher_taps = None
        if align_scale:
            blocks = [branch[CUT - 1] for branch in branches(teacher_head)]
            self.teacher_taps = OutputTaps(blocks, [f"teacher head branch {k}" for k in range(len(blocks))])

    @staticmethod
    def align_scale(x: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """N×C×H×W `x` given the per-channel mean and standard deviation (over N, H, W) of `teacher` (same shape)."""
        dims = (0, 2, 3)
        x = (x - x.mean(dim=dims, keepdim=True)) / (x.std(dim=dims, keepdim=True) + 1e-6)
        return x * teacher.std(dim=dims, keepdim=True) + teacher.mean(dim=dims, keepdim=True)

    def clear(self) -> None:
        """Forget the maps of a step (one that raised must not leave them alive into the next)."""
        for taps in (self.taps, self.teacher_taps):
            if taps is not None:
                taps.clear()

    def attach(self, student_head: nn.Module) -> None:
        """Record the student's maps at the cut in each of its forwards."""
        self.detach()
        blocks = [branch[CUT - 1] for branch in branches(student_head)]
        self.taps = OutputTaps(blocks, [f"head branch {k}" for k in range(len(blocks))])

    def detach(self) -> None:
        """Take the hooks off the student."""
        if self.taps is not None:
            self.taps.remove()
            self.taps = None

    def __call__(self, teacher_feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross predictions of the student's last forward, on the teacher's anchors: DFL box logits N×4R×A and class
        logits N×K×A, laid out as the teacher's head lays out its own. `teacher_feats` are the teacher head's input
        maps N×C×H×W per level; a lower-resolution student's maps are upsampled to their grids first (as in
        `alignment.align`)."""
        maps = [a(x) for a, x in zip(self.adapters, self.taps.collect())]
        maps = align(maps, [*teacher_feats, *teacher_feats])  # box branches, then class branches, level by level
        if self.teacher_taps is not None:
            maps = [self.align_scale(x, t.float()) for x, t in zip(maps, self.teacher_taps.collect())]
        out = [tail(x).flatten(2) for tail, x in zip(self.tails, maps)]
        levels = len(out) // 2
        return torch.cat(out[:levels], dim=-1), torch.cat(out[levels:], dim=-1)
