"""Teacher–Assistant–Student (`assistant=true`): the two runs' arguments, the one-line refusals before anything
runs, and both stages end to end."""

from __future__ import annotations

import csv

import pytest
import yaml
from conftest import IMGSZ, train_args

from yolodistill import DistillError
from yolodistill.assistant import stages
from yolodistill.cli import entrypoint
from yolodistill.recipes import LOWRES_RECIPE, SCRATCH_RECIPE

BASE = {"teacher": "t.pt", "model": "yolov8n.yaml", "data": "d.yaml", "imgsz": 64, "teacher_imgsz": 128}


def test_stage_one_trains_the_teacher_at_the_student_size_and_stage_two_the_student_at_one_size():
    first, second = stages({**BASE, "assistant": True, "assistant_epochs": 7, "epochs": 3, "name": "x", "ld": 2})
    assert first == {"teacher": "t.pt", "model": "t.pt", "data": "d.yaml", "imgsz": 64, "teacher_imgsz": 128,
                     "epochs": 7, "recipe": LOWRES_RECIPE, "name": "x-assistant"}  # fmt: skip
    assert second == {"teacher": "t.pt", "model": "yolov8n.yaml", "data": "d.yaml", "imgsz": 64, "epochs": 3,
                      "name": "x", "ld": 2}  # fmt: skip  # its teacher becomes stage 1's best.pt


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"teacher_imgsz": None}, "assistant= is for a lower-resolution student"),
        ({"teacher": ["a.pt", "b.pt"]}, "assistant=true takes one teacher"),
        ({"recipe": "hed_kd"}, "unknown recipe 'hed_kd'"),
        ({"assistant": "nope.pt"}, "assistant 'nope.pt' not found"),
    ],
)
def test_what_cannot_run_is_refused_before_stage_one(changes, message):
    with pytest.raises(DistillError, match=message):
        stages({**BASE, "assistant": True, **changes})


def test_a_trained_assistant_skips_stage_one(tmp_path):
    trained = tmp_path / "assistant.pt"
    trained.write_bytes(b"")
    first, second = stages({**BASE, "assistant": str(trained)})
    assert first is None and second["teacher"] == str(trained) and "teacher_imgsz" not in second


@pytest.mark.slow
def test_both_stages_from_the_cli(workdir, data_yaml, teacher_pt):
    args = train_args(workdir / "runs", name="tas", imgsz=IMGSZ, teacher_imgsz=2 * IMGSZ)
    argv = ["train", f"teacher={teacher_pt}", "student=yolov8n.yaml", f"data={data_yaml}", "assistant=true"]
    assert entrypoint([*argv, *(f"{k}={v}" for k, v in args.items())]) == 0
    runs = workdir / "runs"
    one = yaml.safe_load((runs / "tas-assistant" / "distill.yaml").read_text())
    two = yaml.safe_load((runs / "tas" / "distill.yaml").read_text())
    assert one["teacher"] == str(teacher_pt) and one["recipe_name"] == LOWRES_RECIPE and one["teacher_imgsz"] == 128
    assert two["teacher"] == str(runs / "tas-assistant" / "weights" / "best.pt") and two["teacher_imgsz"] == IMGSZ
    assert two["recipe_name"] == SCRATCH_RECIPE  # stage 2: the default of the student's start (a yaml)
    with open(runs / "tas" / "results.csv") as f:
        row = next(csv.DictReader(f))
    assert float(row["train/ld_loss"]) > 0  # the default recipe whole, LD included: one resolution in stage 2
