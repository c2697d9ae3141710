"""Distillation recipes: YAML files that declare losses, weights, τ, taps and adapter kind (cf. torchdistill configs).

A recipe is flat, like Ultralytics' own hyper-parameters, so any single value can be overridden next to the train
arguments: `yolodistill train ... recipe=cwd cwd=2.0 cwd_tau=4`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from .adapters import ADAPTERS
from .losses import BoxKDLoss
from .utils import DistillError, bundled, suggest

DEFAULT_RECIPE = "head_kd"  # chosen by benchmarks/efficacy.py (README "Results")
LOWRES_RECIPE = "lowres"  # the default when teacher_imgsz > imgsz (LD needs one grid, so head_kd cannot be it)
OTHER_RECIPES = ("head_pkd", "cwd_mimic")  # measured beside it in the full efficacy run
# every loss a recipe can weight, in column order
LOSSES = ("cwd", "mimic", "pkd", "cls_kd", "ld", "box_kd", "cross_kd")
HEAD_LOSSES = ("cls_kd", "ld", "box_kd", "cross_kd")
SCHEDULES = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class Recipe:
    """What to distil and how much. Loss weights are gains like Ultralytics' `box`/`cls`/`dfl`; 0 turns a loss off."""

    cwd: float = 0.0  # weight of CWDLoss
    cwd_tau: float = 1.0  # CWD temperature τ
    mimic: float = 0.0  # weight of MimicLoss
    pkd: float = 0.0  # weight of PKDLoss (Pearson-correlation feature matching)
    feature_weighted: bool = False  # weight mimic and PKD per location by the teacher's top class score there
    cls_kd: float = 0.0  # weight of ClassKDLoss (head: class scores)
    cls_kd_tau: float = 1.0  # its temperature τ
    cls_kd_weighted: bool = False  # weight each anchor by the teacher's top class score
    cls_kd_beta: float = 0.0  # BCKD's quality-focal exponent β on |p_S − p_T| (0: plain binary KL); also CrossKD's
    ld: float = 0.0  # weight of LDLoss (head: DFL box distributions)
    ld_tau: float = 1.0  # its temperature τ
    box_kd: float = 0.0  # weight of BoxKDLoss (head: GIoU of the decoded boxes)
    box_kd_weights: str = "teacher"  # its anchor weights: teacher (top teacher score) | bckd (top score disagreement)
    cross_kd: float = 0.0  # weight of CrossKDLoss (student head features via the teacher's head; cls_kd_tau, ld_tau)
    cross_kd_align: bool = False  # CrossKD's align_scale: student maps at the cut get the teacher's channel stats
    balance: float = 0.0  # > 0: all weights rescaled once so distillation = balance × detection loss (first steps)
    schedule: str = "constant"  # all distillation weights over training: constant | linear | cosine (1 → 0.1)
    off_close_mosaic: bool = False  # no distillation in the final close_mosaic epochs (fine-tuning on plain images)
    levels: tuple[float, ...] | None = None  # per-level weights (one per tap); None = all 1
    adapter: str = "conv"  # student→teacher channel adapter: conv | conv_bn
    teacher_layers: tuple[int, ...] | None = None  # teacher layer indices to tap; None = inputs of its Detect head
    student_layers: tuple[int, ...] | None = None  # student layer indices to tap; None = inputs of its Detect head

    def weights(self) -> dict[str, float]:
        """The losses in use and their weights, in a fixed order (the order of the loss columns)."""
        return {name: getattr(self, name) for name in LOSSES if getattr(self, name) > 0}

    @property
    def uses_head(self) -> bool:
        """True when a loss needs the Detect head's outputs (the teacher then runs its head too)."""
        return any(name in HEAD_LOSSES for name in self.weights()) or self.feature_weighted

    @property
    def uses_features(self) -> bool:
        """True when a loss needs tapped feature maps (and so the adapters)."""
        return any(name not in HEAD_LOSSES for name in self.weights())

    def factor(self, epoch: int, epochs: int, close_mosaic: int = 0) -> float:
        """Multiplier of every distillation weight in `epoch` (0-based) of `epochs`: the `schedule` decays it from 1
        at the first epoch to 0.1 at the last (linearly or along a half cosine); `off_close_mosaic` makes it 0 in the
        last `close_mosaic` epochs."""
        if self.off_close_mosaic and close_mosaic and epoch >= epochs - close_mosaic:
            return 0.0
        x = epoch / max(1, epochs - 1)
        if self.schedule == "linear":
            return 1.0 - 0.9 * x
        if self.schedule == "cosine":
            return 0.1 + 0.45 * (1.0 + math.cos(math.pi * x))
        return 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain types only: this goes into checkpoints that must load without yolodistill."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


RECIPE_KEYS = tuple(f.name for f in fields(Recipe))


def available() -> list[str]:
    """Names of the bundled recipes."""
    return sorted(p.stem for p in bundled("recipes").glob("*.yaml"))


def _read(spec: str | Path) -> tuple[str, dict]:
    path = Path(spec)
    if path.suffix not in {".yaml", ".yml"}:
        path = bundled("recipes") / f"{spec}.yaml"
        if not path.exists():
            raise DistillError(f"unknown recipe '{spec}': use one of {available()} or a path to a recipe .yaml")
    elif not path.exists():
        raise DistillError(f"recipe file '{spec}' not found: check the path or use one of {available()}")
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise DistillError(f"recipe '{path}' is not valid YAML ({str(e).splitlines()[0]}): fix the file") from e
    if not isinstance(content, dict):
        raise DistillError(f"recipe '{path}' must be a mapping of key: value, got {type(content).__name__}")
    return str(path), content


def _floats(v: Any) -> tuple[float, ...]:
    return tuple(float(x) for x in v)


def _ints(v: Any) -> tuple[int, ...]:
    return tuple(int(x) for x in v)


def _bool(v: Any) -> bool:
    if isinstance(v, str) and v.lower() in {"true", "false", "1", "0"}:
        return v.lower() in {"true", "1"}
    if isinstance(v, (bool, int)) and v in (0, 1):
        return bool(v)
    raise ValueError(f"{v!r} is not true or false")


_CONVERT = {k: float for k in (*LOSSES, "cwd_tau", "cls_kd_tau", "ld_tau", "cls_kd_beta", "balance")}
_CONVERT.update(levels=_floats, adapter=str, teacher_layers=_ints, student_layers=_ints, schedule=str)
_CONVERT.update(cls_kd_weighted=_bool, off_close_mosaic=_bool, feature_weighted=_bool, cross_kd_align=_bool)
_CONVERT.update(box_kd_weights=str)


def load_recipe_value(key: str, value: Any) -> Any:
    """`value` of recipe key `key` converted as a recipe file's would be (so 2 and 2.0, or "true" and True, compare
    equal); other keys and None pass as they are."""
    return value if value is None or key not in _CONVERT else _CONVERT[key](value)


def _check(values: dict[str, Any], source: str) -> Recipe:
    for key in values:
        if key not in RECIPE_KEYS:
            raise suggest(key, RECIPE_KEYS, what=f"recipe key in {source}")
    try:
        r = Recipe(**{k: None if v is None else _CONVERT[k](v) for k, v in values.items()})
    except (TypeError, ValueError) as e:
        raise DistillError(
            f"invalid value in {source} ({e}): weights and τ are numbers, layers lists of ints, flags true/false"
        ) from e
    if min(getattr(r, k) for k in LOSSES) < 0 or (r.levels and min(r.levels) < 0):
        raise DistillError(f"negative loss weight in {source}: weights must be >= 0")
    for key in ("cls_kd_beta", "balance"):
        if getattr(r, key) < 0:
            raise DistillError(f"{key}={getattr(r, key)} in {source}: it must be >= 0 (0 = off)")
    if r.box_kd_weights not in BoxKDLoss.WEIGHTS:
        raise suggest(r.box_kd_weights, BoxKDLoss.WEIGHTS, what=f"box_kd_weights in {source}")
    for key in ("cwd_tau", "cls_kd_tau", "ld_tau"):
        if getattr(r, key) <= 0:
            raise DistillError(f"{key}={getattr(r, key)} in {source}: the temperature must be > 0")
    if r.feature_weighted and not (r.mimic > 0 or r.pkd > 0):
        raise DistillError(f"feature_weighted in {source} weights mimic and pkd, but both are 0: set one of them > 0")
    if r.schedule not in SCHEDULES:
        raise suggest(r.schedule, SCHEDULES, what=f"schedule in {source}")
    if r.adapter not in ADAPTERS:
        raise suggest(r.adapter, ADAPTERS, what=f"adapter in {source}")
    return r


def load_recipe(spec: str | Path = DEFAULT_RECIPE, overrides: dict[str, Any] | None = None) -> Recipe:
    """Load a bundled recipe by name (`cwd`) or a user's by path (`my.yaml`), then apply single-value overrides."""
    source, values = _read(spec)
    _check(values, f"recipe '{source}'")
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    return _check({**values, **overrides}, "recipe overrides" if overrides else f"recipe '{source}'")
