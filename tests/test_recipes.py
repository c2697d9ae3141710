"""Recipes: the schedule of the weights, the loss keys derived from the table of losses, and every recipe key
documented in `yolodistill help` (generated from the Recipe fields) and in README."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from conftest import save_checkpoint, train_args
from ultralytics.nn.tasks import DetectionModel

from yolodistill import DistillationTrainer
from yolodistill.cli import entrypoint
from yolodistill.recipes import (
    DEFAULT_RECIPE,
    HEAD_LOSSES,
    LOSSES,
    LOWRES_RECIPE,
    RECIPE_KEYS,
    SCRATCH_RECIPE,
    TASK_RECIPES,
    Recipe,
    available,
    default_recipe,
    load_recipe,
    starts_pretrained,
)
from yolodistill.registry import TABLE

COS45 = math.cos(math.pi / 4)


@pytest.mark.parametrize(
    ("schedule", "off", "expected"),
    [
        ("constant", False, [1.0, 1.0, 1.0, 1.0, 1.0]),
        ("linear", False, [1.0, 0.775, 0.55, 0.325, 0.1]),
        ("cosine", False, [1.0, 0.1 + 0.45 * (1 + COS45), 0.55, 0.1 + 0.45 * (1 - COS45), 0.1]),
        ("constant", True, [1.0, 1.0, 1.0, 0.0, 0.0]),
    ],
)  # fmt: skip
def test_schedule_factor(schedule, off, expected):
    recipe = load_recipe("head_kd", {"schedule": schedule, "off_close_mosaic": off})
    assert [recipe.factor(e, 5, close_mosaic=2) for e in range(5)] == pytest.approx(expected)


def test_loss_keys_come_from_the_table_of_losses():
    head = ("cls_kd", "ld", "box_kd", "cross_kd", "mask_kd", "proto_kd", "kpt_kd", "angle_kd", "pseudo")
    assert LOSSES == tuple(TABLE) == ("cwd", "mimic", "pkd", *head, "isrd")
    assert head == HEAD_LOSSES  # the task losses read the task heads' outputs, pseudo-labels the teacher's boxes
    assert not TABLE["isrd"].head and not TABLE["isrd"].features  # images only: neither the head nor the taps
    for name, row in TABLE.items():  # a loss's weight and its parameters are recipe keys
        assert name in RECIPE_KEYS and set(row.params.values()) <= set(RECIPE_KEYS)
    r = load_recipe("head_kd", {"cross_kd": 1, "cls_kd_beta": 1})
    assert TABLE["cross_kd"].build(r).cls.beta == 1.0  # CrossKD's class term takes BCKD's β, as ClassKDLoss does


def test_every_recipe_key_is_in_help_and_readme(capsys):
    assert entrypoint(["help"]) == 0
    out = capsys.readouterr().out
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for f in fields(Recipe):
        assert f"  {f.name} " in out and f.metadata["help"] in out
        assert f"`{f.name}`" in readme, f"README does not name recipe key {f.name!r}"


@pytest.mark.parametrize(
    ("model", "pretrained", "starts"),
    [
        ("yolov8n.yaml", True, False),  # Ultralytics' default pretrained=True loads nothing for a yaml
        ("yolov8n.pt", True, True),
        ("runs/x/weights/BEST.PT", True, True),
        ("yolov8n.pt", False, False),  # pretrained=False: the .pt's architecture, from scratch
        ("yolov8n.yaml", "yolov8n.pt", True),  # weights loaded into the yaml's model
    ],
)  # fmt: skip
def test_a_student_starts_pretrained_as_ultralytics_setup_model_decides(model, pretrained, starts):
    assert starts_pretrained(model, pretrained) is starts


def test_the_default_is_the_one_of_the_students_start():
    assert default_recipe(pretrained=True) == DEFAULT_RECIPE
    assert default_recipe(pretrained=False) == SCRATCH_RECIPE
    assert (
        default_recipe(pretrained=True, lowres=True) == default_recipe(pretrained=False, lowres=True) == LOWRES_RECIPE
    )
    # a task with its own default for students from scratch (OBB): only from scratch, at the teacher's resolution
    assert default_recipe(pretrained=False, task="obb") == TASK_RECIPES["obb"] == "obb" != SCRATCH_RECIPE
    assert default_recipe(pretrained=True, task="obb") == DEFAULT_RECIPE
    assert default_recipe(pretrained=False, lowres=True, task="obb") == LOWRES_RECIPE
    assert default_recipe(pretrained=False, task="segment") == SCRATCH_RECIPE
    assert set(TASK_RECIPES.values()) <= set(available())


def test_a_run_without_a_recipe_takes_the_default_of_its_students_start(workdir, data_yaml, teacher_pt, caplog):
    torch.manual_seed(0)
    other = DetectionModel("yolov8n.yaml", nc=3, verbose=False)  # pretrained on other classes, as yolov8n.pt is
    other.names = {0: "cat", 1: "dog", 2: "bird"}
    pretrained = str(save_checkpoint(other, workdir / "pretrained_for_the_default.pt"))

    def plan(model, **kw):
        args = {"teacher": str(teacher_pt), "model": model, "data": str(data_yaml), **kw}
        return DistillationTrainer(overrides={**args, **train_args(workdir / "runs", name="default-pick")}).plan

    with caplog.at_level("INFO", logger="ultralytics"):
        assert plan("yolov8n.yaml").recipe_name == SCRATCH_RECIPE
        assert f"recipe={SCRATCH_RECIPE} (the default for a student from scratch)" in caplog.text
        assert plan(pretrained).recipe_name == DEFAULT_RECIPE
        assert f"recipe={DEFAULT_RECIPE} (the default for a pretrained student)" in caplog.text
    assert plan("yolov8n.yaml", pretrained=pretrained).recipe_name == DEFAULT_RECIPE  # weights into the yaml's model
    assert plan(pretrained, recipe="ld").recipe_name == "ld"  # a recipe given is the recipe
    assert plan(pretrained).recipe == load_recipe(DEFAULT_RECIPE)
