"""Connectors that map student channels to teacher channels, one per tapped level (FitNets' regressor)."""

from __future__ import annotations

from collections.abc import Sequence

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
