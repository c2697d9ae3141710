"""Distillation recipes: YAML files that declare losses, weights, τ, taps and adapter kind (cf. torchdistill configs).

A recipe is flat, like Ultralytics' own hyper-parameters, so any single value can be overridden next to the train
arguments: `yolodistill train ... recipe=cwd cwd=2.0 cwd_tau=4`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from .adapters import ADAPTERS
from .utils import DistillError, bundled, suggest

DEFAULT_RECIPE = "cwd_mimic"


@dataclass(frozen=True)
class Recipe:
    """What to distil and how much. Loss weights are gains like Ultralytics' `box`/`cls`/`dfl`; 0 turns a loss off."""

    cwd: float = 0.0  # weight of CWDLoss
    cwd_tau: float = 1.0  # CWD temperature τ
    mimic: float = 0.0  # weight of MimicLoss
    levels: tuple[float, ...] | None = None  # per-level weights (one per tap); None = all 1
    adapter: str = "conv"  # student→teacher channel adapter: conv | conv_bn
    teacher_layers: tuple[int, ...] | None = None  # teacher layer indices to tap; None = inputs of its Detect head
    student_layers: tuple[int, ...] | None = None  # student layer indices to tap; None = inputs of its Detect head

    def weights(self) -> dict[str, float]:
        """The losses in use and their weights, in a fixed order (the order of the loss columns)."""
        return {name: w for name, w in (("cwd", self.cwd), ("mimic", self.mimic)) if w > 0}

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


_CONVERT = {"cwd": float, "cwd_tau": float, "mimic": float, "levels": _floats, "adapter": str}
_CONVERT.update(teacher_layers=_ints, student_layers=_ints)


def _check(values: dict[str, Any], source: str) -> Recipe:
    for key in values:
        if key not in RECIPE_KEYS:
            raise suggest(key, RECIPE_KEYS, what=f"recipe key in {source}")
    try:
        r = Recipe(**{k: None if v is None else _CONVERT[k](v) for k, v in values.items()})
    except (TypeError, ValueError) as e:
        raise DistillError(
            f"invalid value in {source} ({e}): weights and cwd_tau are numbers, layers lists of ints"
        ) from e
    if r.cwd < 0 or r.mimic < 0 or (r.levels and min(r.levels) < 0):
        raise DistillError(f"negative loss weight in {source}: weights must be >= 0")
    if r.cwd_tau <= 0:
        raise DistillError(f"cwd_tau={r.cwd_tau} in {source}: the temperature must be > 0")
    if r.adapter not in ADAPTERS:
        raise suggest(r.adapter, ADAPTERS, what=f"adapter in {source}")
    return r


def load_recipe(spec: str | Path = DEFAULT_RECIPE, overrides: dict[str, Any] | None = None) -> Recipe:
    """Load a bundled recipe by name (`cwd`) or a user's by path (`my.yaml`), then apply single-value overrides."""
    source, values = _read(spec)
    _check(values, f"recipe '{source}'")
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    return _check({**values, **overrides}, "recipe overrides" if overrides else f"recipe '{source}'")
