"""Connectors that map student channels to teacher channels, one per tapped level (FitNets' regressor), and ISRD's
decoder from the student's input conv to the teacher's image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

ADAPTERS = ("conv", "conv_bn")


def adapter(c_student: int, c_teacher: int, kind: str = "conv") -> nn.Module:
    """A 1×1 convolution C_s → C_t (N×C_s×H×W → N×C_t×H×W), optionally followed by BatchNorm (`conv_bn`).

    BatchNorm re-centres the adapted map per channel, which keeps the mimic loss from being dominated by the scale of
    a few teacher channels; the plain conv is the cheaper default.
    """
    if kind == "conv":
        return nn.Conv2d(c_student, c_teacher, 1)
    if kind == "conv_bn":
        return nn.Sequential(nn.Conv2d(c_student, c_teacher, 1, bias=False), nn.BatchNorm2d(c_teacher))
    raise ValueError(f"unknown adapter '{kind}', expected one of {ADAPTERS}")


def build_adapters(
    student_channels: Sequence[int], teacher_channels: Sequence[int], kind: str = "conv"
) -> nn.ModuleList:
    """One adapter per level; trained with the student, never saved with it."""
    return nn.ModuleList(adapter(cs, ct, kind) for cs, ct in zip(student_channels, teacher_channels))


class ImageDecoder(nn.Module):
    """ISRD's decoder (Pixel Distillation): the student's input-conv map N×C×h×w → an image N×3×(r·h)×(r·w), a 1×1
    conv to 3·r² channels then pixel shuffle by r, where r = (stride of the input conv) × teacher_imgsz / imgsz
    rounded; resized bilinearly to `size` (the teacher's image, H_t×W_t) where rounding the student's image size to
    the stride leaves them apart. Trained with the student, never saved with it."""

    def __init__(self, channels: int, r: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, 3 * r * r, 1)
        self.shuffle = nn.PixelShuffle(r)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = self.shuffle(self.conv(x))
        return y if tuple(y.shape[-2:]) == tuple(size) else F.interpolate(y, size=size, mode="bilinear")
