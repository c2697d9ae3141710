"""Recipes: the schedule of the weights, the loss keys derived from the table of losses, and every recipe key
documented in `yolodistill help` (generated from the Recipe fields) and in README."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

import pytest

from yolodistill.cli import entrypoint
from yolodistill.recipes import HEAD_LOSSES, LOSSES, RECIPE_KEYS, Recipe, load_recipe
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
    assert LOSSES == tuple(TABLE) == ("cwd", "mimic", "pkd", *head)
    assert head == HEAD_LOSSES  # the task losses read the task heads' outputs, pseudo-labels the teacher's boxes
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
