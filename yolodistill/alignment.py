"""Spatial alignment of student maps to the teacher's grid (pixel distillation, Guo et al., TPAMI 2024).

A student that sees an image at imgsz and a teacher that sees it at teacher_imgsz ≥ imgsz tap levels of equal stride,
so the teacher's grid is teacher_imgsz / imgsz times finer. Upsampling the (adapted) student maps bilinearly to the
teacher's H×W lines up locations — and so anchors — before the losses compare them; any ratio works (640 → 416).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def student_size(teacher_hw: Sequence[int], ratio: float, stride: int) -> tuple[int, int]:
    """The student's batch size (h, w) for a teacher batch of `teacher_hw`: each side × `ratio` (imgsz / teacher_imgsz),
    rounded to a multiple of `stride` (at least one stride). A square teacher_imgsz batch gives exactly imgsz."""
    stride = int(stride)
    return tuple(max(stride, round(side * ratio / stride) * stride) for side in teacher_hw)


def align(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Resize each student map N×C×h×w to its teacher map's N×C×H×W; maps already on the teacher's grid pass as is."""
    return [
        s if s.shape[-2:] == t.shape[-2:] else F.interpolate(s, size=t.shape[-2:], mode="bilinear", align_corners=False)
        for s, t in zip(student, teacher)
    ]


def split_levels(x: torch.Tensor, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Head outputs flattened over the anchors of all levels, N×K×A (A = Σ_l h_l·w_l, levels laid out as `feats`, the
    head's N×C×h_l×w_l input maps), back to one N×K×h_l×w_l map per level."""
    n, k = x.shape[:2]
    levels = x.split([f.shape[-2] * f.shape[-1] for f in feats], dim=-1)
    return [level.view(n, k, *f.shape[-2:]) for level, f in zip(levels, feats)]


def align_anchors(student: torch.Tensor, student_feats: Sequence[torch.Tensor], teacher_feats: Sequence[torch.Tensor]):
    """Bring head outputs flattened over the anchors of all levels (N×K×A_s, levels laid out as in `student_feats`) to
    the teacher's anchors (N×K×A_t): each level is viewed as an N×K×h×w map and upsampled like the features."""
    if all(s.shape[-2:] == t.shape[-2:] for s, t in zip(student_feats, teacher_feats)):
        return student
    maps = split_levels(student, student_feats)
    return torch.cat([m.flatten(2) for m in align(maps, teacher_feats)], dim=-1)
