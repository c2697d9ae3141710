"""Loss balancing (`balance`): the scale measured over the first steps, frozen after, kept across a resume."""

from __future__ import annotations

import pytest
import torch
from conftest import train_args

from yolodistill import DistillationTrainer
from yolodistill.balance import Balance
from yolodistill.trainer import CKPT_KEY


def test_scale_is_measured_over_the_first_steps_then_frozen():
    b = Balance(0.1)
    terms = torch.tensor([1.0, 3.0])
    for _ in range(Balance.STEPS - 1):
        b.scaled(torch.tensor(2.0), terms)
    # the last calibration step: the ratio of the sums over all STEPS steps, including this one's other values
    out = b.scaled(torch.tensor(2.0 + Balance.STEPS), terms)
    expected = 0.1 * (2.0 * Balance.STEPS + Balance.STEPS) / (4.0 * Balance.STEPS)
    torch.testing.assert_close(out, terms * expected)
    # frozen after: other losses leave the scale alone
    torch.testing.assert_close(b.scaled(torch.tensor(100.0), terms), terms * expected)
    assert b.steps == Balance.STEPS


def test_off_and_eval_mode_leave_terms_and_scale_alone():
    terms = torch.tensor([1.0, 3.0])
    assert Balance(0.0).scaled(torch.tensor(5.0), terms) is terms
    b = Balance(0.1).eval()
    torch.testing.assert_close(b.scaled(torch.tensor(5.0), terms), terms)
    assert b.steps == 0


class _Stop(Exception):
    pass


@pytest.mark.slow
def test_distillation_starts_at_the_ratio_and_the_scale_survives_resume(workdir, data_yaml, teacher_pt):
    args = dict(teacher=str(teacher_pt), model="yolov8n.yaml", data=str(data_yaml), balance=0.25)
    first = {}

    def on_batch_end(t):
        if "ratio" not in first:  # the first step's distillation against its detection loss
            items = {k: float(v) for k, v in t.loss_items.items()}
            distill = sum(v for k, v in items.items() if k in t.distiller.names)
            first["ratio"] = distill / (sum(items.values()) - distill)

    def stop(t):
        raise _Stop

    trainer = DistillationTrainer(overrides={**args, **train_args(workdir / "runs", name="balance", epochs=2)})
    trainer.add_callback("on_train_batch_end", on_batch_end)
    trainer.add_callback("on_model_save", stop)  # after the first epoch's 2 steps
    with pytest.raises(_Stop):
        trainer.train()
    assert first["ratio"] == pytest.approx(0.25, rel=1e-4)
    state = torch.load(trainer.last, map_location="cpu", weights_only=False)[CKPT_KEY]["balance"]
    assert state["steps"] == 2
    torch.testing.assert_close(state["scale"], 0.25 * state["sums"][0] / state["sums"][1])

    resumed = DistillationTrainer(overrides={"resume": str(trainer.last)})
    at_start = {}
    resumed.add_callback("on_train_start", lambda t: at_start.update(t.distiller.balance.state()))
    resumed.train()
    assert at_start["steps"] == 2
    torch.testing.assert_close(at_start["sums"], state["sums"])  # calibration goes on from where it stopped
    assert resumed.distiller.balance.steps == 4
