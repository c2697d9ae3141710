"""CWD and mimic against references computed independently (numpy, explicit loops), plus their basic properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from yolodistill.losses import CWDLoss, MimicLoss


def cwd_reference(student: list[np.ndarray], teacher: list[np.ndarray], tau: float) -> float:
    """Channel-wise distillation written out map by map in float64, straight from the paper's formula."""
    total = 0.0
    for s, t in zip(student, teacher):
        n, c = s.shape[:2]
        level = 0.0
        for i in range(n):
            for j in range(c):
                ps = np.exp(s[i, j].ravel() / tau)
                ps /= ps.sum()
                pt = np.exp(t[i, j].ravel() / tau)
                pt /= pt.sum()
                level += float(np.sum(pt * np.log(pt / ps)))
        total += level * tau**2 / (n * c)
    return total


def maps(seed: int, shapes=((2, 3, 4, 5), (2, 6, 2, 3))) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g, dtype=torch.float64) * 2 for s in shapes]


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_cwd_matches_reference(tau):
    s, t = maps(0), maps(1)
    expected = cwd_reference([x.numpy() for x in s], [x.numpy() for x in t], tau)
    got = CWDLoss(tau=tau)(s, t).item()
    assert expected > 0.01
    assert got == pytest.approx(expected, rel=1e-5)


def test_cwd_tiny_case_by_hand():
    # One channel over two locations: teacher logits (0, ln 3) → p_t = (1/4, 3/4); student (0, 0) → p_s = (1/2, 1/2).
    t = [torch.tensor([[[[0.0, math.log(3.0)]]]])]
    s = [torch.zeros(1, 1, 1, 2)]
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert CWDLoss()(s, t).item() == pytest.approx(expected, rel=1e-6)


def test_mimic_matches_reference():
    s, t = maps(2), maps(3)
    expected = sum(float(np.mean((a.numpy() - b.numpy()) ** 2)) for a, b in zip(s, t))
    assert MimicLoss()(s, t).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("loss", [CWDLoss(tau=2.0), MimicLoss()])
def test_zero_when_equal_and_positive_otherwise(loss):
    t = maps(4)
    assert loss([x.clone() for x in t], t).item() == pytest.approx(0.0, abs=1e-9)
    assert loss(maps(5), t).item() > 0


@pytest.mark.parametrize("cls", [CWDLoss, MimicLoss])
def test_level_weights(cls):
    s, t = maps(6), maps(7)
    per_level = [cls()([a], [b]).item() for a, b in zip(s, t)]
    weighted = cls(level_weights=[0.5, 3.0])(s, t).item()
    assert weighted == pytest.approx(0.5 * per_level[0] + 3.0 * per_level[1], rel=1e-5)


def test_fp16_inputs_give_fp32_loss():
    s, t = [x.half() for x in maps(8)], [x.half() for x in maps(9)]
    assert CWDLoss()(s, t).dtype == torch.float32
    assert MimicLoss()(s, t).dtype == torch.float32


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ"):
        MimicLoss()([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 2, 4, 4)])
