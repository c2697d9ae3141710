"""Spatial alignment of student maps to the teacher's grid (pixel distillation, Guo et al., TPAMI 2024).

A student that sees an image at imgsz and a teacher that sees it at teacher_imgsz ≥ imgsz tap levels of equal stride,
so the teacher's grid is teacher_imgsz / imgsz times finer. Upsampling the (adapted) student maps bilinearly to the
teacher's H×W lines up locations — and so anchors — before the losses compare them; any ratio works (640 → 416).

The head outputs can meet another way when teacher_imgsz / imgsz is a power of 2 (`lowres_levels=shifted`): the
student's level of stride s against the teacher's of stride 2s (at ratio 2), which has the same grid over the same
image. There the DFL box bins mean the same on both, so LD and box KD apply at low resolution as well.
"""

from __future__ import annotations

import math
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


# How a lower-resolution student's head levels meet the teacher's (the recipe's `lowres_levels`)
LEVEL_MATCHES = ("same", "shifted")
# the head outputs laid out per anchor over all levels (Detect's and what the task heads add)
PER_ANCHOR = ("boxes", "scores", "mask_coefficient", "kpts", "angle")


def level_shift(teacher_imgsz: int, imgsz: int) -> int | None:
    """k where teacher_imgsz = 2^k · imgsz, else None. At ratio 2^k the student's level l (stride s) has the grid
    of the teacher's level l + k (stride 2^k·s) over the same image: each cell covers the same part of it, so class
    scores, anchor assignment and DFL box bins (which count cells) mean the same on both."""
    ratio = teacher_imgsz / imgsz
    k = round(math.log2(ratio))
    return k if k >= 1 and 2**k * imgsz == teacher_imgsz else None


def _levels(head: dict, keep: range) -> dict:
    """A head output dict restricted to levels `keep` (contiguous): its per-anchor outputs narrowed (views, no copy)
    to those levels' anchors, its `feats` to those levels' maps; other entries (prototypes) as they are."""
    sizes = [f.shape[-2] * f.shape[-1] for f in head["feats"]]
    start, length = sum(sizes[: keep.start]), sum(sizes[keep.start : keep.stop])
    out = {k: v.narrow(-1, start, length) if k in PER_ANCHOR else v for k, v in head.items()}
    out["feats"] = head["feats"][keep.start : keep.stop]
    return out


def paired_levels(student: dict, teacher: dict, shift: int) -> tuple[dict, dict]:
    """Student and teacher head output dicts (distiller.head_outputs) restricted to the levels that are compared:
    the student's level l against the teacher's level l + `shift` (`level_shift`), so the teacher's finest `shift`
    levels and the student's coarsest `shift` levels drop out. `shift` 0: both as they are."""
    if not shift:
        return student, teacher
    n = len(teacher["feats"])
    return _levels(student, range(0, n - shift)), _levels(teacher, range(shift, n))
