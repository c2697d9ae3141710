"""Distillation recipes: YAML files that declare losses, weights, τ, taps and adapter kind (cf. torchdistill configs).

A recipe is flat, like Ultralytics' own hyper-parameters, so any single value can be overridden next to the train
arguments: `yolodistill train ... recipe=cwd cwd=2.0 cwd_tau=4`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .adapters import ADAPTERS
from .losses import BoxKDLoss
from .registry import TABLE
from .utils import DistillError, bundled, suggest

# The defaults, one per start of the student, each chosen by benchmarks/suite.py as the best worst regime among the
# regimes of that start (README "Results"): what helps a student from scratch most is not what helps a pretrained one.
DEFAULT_RECIPE = "finetune"  # a pretrained student (student=x.pt): fine-tuned, as users fine-tune yolov8n.pt
SCRATCH_RECIPE = "head_kd"  # a student from scratch (student=x.yaml)
LOWRES_RECIPE = "lowres"  # teacher_imgsz > imgsz, either start (LD needs one grid, so neither default above can be it)
# The default of a task's students from scratch where it is not SCRATCH_RECIPE: chosen by benchmarks/tasks.py on that
# task's students (README "Results"), where it gains more than SCRATCH_RECIPE and meets the goal SCRATCH_RECIPE misses.
TASK_RECIPES = {"obb": "obb"}
DEFAULT_FOR = {DEFAULT_RECIPE: "a pretrained student", SCRATCH_RECIPE: "a student from scratch",
               LOWRES_RECIPE: "a student at a lower resolution than the teacher",
               **{r: f"an {t.upper()} student from scratch" for t, r in TASK_RECIPES.items()}}  # fmt: skip
OTHER_RECIPES = ("ld", "head_pkd", "cwd_mimic")  # measured beside it in the full efficacy run
# every loss a recipe can weight, in column order, and those that read the Detect head: from the table of losses
LOSSES = tuple(TABLE)
HEAD_LOSSES = tuple(name for name, row in TABLE.items() if row.head)
SCHEDULES = ("constant", "linear", "cosine")


def _key(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A recipe field and its help (what `yolodistill help` prints, as Ultralytics' cfg/default.yaml comments do)."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class Recipe:
    """What to distil and how much. Loss weights are gains like Ultralytics' `box`/`cls`/`dfl`; 0 turns a loss off.
    Each loss's weight is named as its row in `registry.TABLE`; each field's help is `yolodistill help`'s."""

    cwd: float = _key(0.0, "weight of CWDLoss (channel-wise distillation of the tapped maps)")
    cwd_tau: float = _key(1.0, "CWD temperature τ")
    mimic: float = _key(0.0, "weight of MimicLoss (mean squared error of the adapted maps)")
    pkd: float = _key(0.0, "weight of PKDLoss (Pearson-correlation feature matching)")
    feature_weighted: bool = _key(False, "true: weight mimic and PKD per location by the teacher's top class score")
    cls_kd: float = _key(0.0, "weight of ClassKDLoss (head: class scores at every anchor)")
    cls_kd_tau: float = _key(1.0, "its temperature τ (also CrossKD's class term)")
    cls_kd_weighted: bool = _key(False, "true: weight each anchor by the teacher's top class score")
    cls_kd_beta: float = _key(
        0.0, "BCKD's quality-focal exponent β on |p_S − p_T| (0: plain binary KL); also CrossKD's"
    )
    ld: float = _key(0.0, "weight of LDLoss (head: DFL box distributions); needs teacher_imgsz == imgsz")
    ld_tau: float = _key(1.0, "its temperature τ (also CrossKD's box term)")
    box_kd: float = _key(0.0, "weight of BoxKDLoss (head: GIoU of the decoded boxes); needs teacher_imgsz == imgsz")
    box_kd_weights: str = _key(
        "teacher", "its anchor weights: teacher (top teacher score) | bckd (top score disagreement)", BoxKDLoss.WEIGHTS
    )
    cross_kd: float = _key(0.0, "weight of CrossKDLoss (the student's head features through the teacher's head)")
    cross_kd_align: bool = _key(False, "true: CrossKD's align_scale, student maps at the cut get the teacher's stats")
    mask_kd: float = _key(0.0, "weight of MaskKDLoss (segment: per-pixel binary KL of the masks at confident anchors)")
    mask_kd_topk: int = _key(32, "its anchors per image: the teacher's most confident ones")
    proto_kd: float = _key(0.0, "weight of ProtoKDLoss (segment: PKD of the prototype maps through a 1×1 adapter)")
    kpt_kd: float = _key(0.0, "weight of KeypointKDLoss (pose: keypoint L1 in grid cells + visibility KL)")
    angle_kd: float = _key(0.0, "weight of AngleKDLoss (obb: 1 − cos 2Δθ of the box angles)")
    pseudo: float = _key(0.0, "weight of PseudoLabelLoss (unlabeled images: detection loss on the teacher's boxes)")
    pseudo_conf: float = _key(0.5, "its threshold on the teacher's top class score (0 < pseudo_conf < 1)")
    isrd: float = _key(0.0, "weight of ISRDLoss (the student's input conv, decoded, predicts the teacher's image)")
    balance: float = _key(0.0, "> 0: all weights rescaled once so distillation starts at balance × the detection loss")
    schedule: str = _key(
        "constant", "all distillation weights over training: constant | linear | cosine (1 → 0.1)", SCHEDULES
    )
    off_close_mosaic: bool = _key(False, "true: no distillation in the final close_mosaic epochs")
    levels: tuple[float, ...] | None = _key(
        None, "per-level weights of the feature losses, one per tap (default all 1)"
    )
    adapter: str = _key("conv", "student→teacher channel adapter: conv | conv_bn", ADAPTERS)
    teacher_layers: tuple[int, ...] | None = _key(
        None, "teacher layer indices to tap (default: its Detect head's inputs)"
    )
    student_layers: tuple[int, ...] | None = _key(
        None, "student layer indices to tap (default: its Detect head's inputs)"
    )

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
        return any(TABLE[name].features for name in self.weights())

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


def recipe_help(indent: int = 2, width: int = 18) -> str:
    """One line per recipe key with its help: the key list of `yolodistill help`."""
    return "\n".join(f"{' ' * indent}{f.name:<{width}}{f.metadata['help']}" for f in fields(Recipe))


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


# each key's conversion from a YAML or command-line value, by its field's type
_BY_TYPE = {"float": float, "int": int, "bool": _bool, "str": str, "tuple[float, ...] | None": _floats}
_BY_TYPE["tuple[int, ...] | None"] = _ints
_CONVERT = {f.name: _BY_TYPE[f.type] for f in fields(Recipe)}
_TAUS = tuple(k for k in RECIPE_KEYS if k.endswith("_tau"))  # temperatures: > 0
_FACTORS = tuple(k for k, c in _CONVERT.items() if c is float and k not in (*LOSSES, *_TAUS))  # >= 0, 0 = off
_COUNTS = tuple(k for k, c in _CONVERT.items() if c is int)  # >= 1
_CHOICES = {f.name: f.metadata["choices"] for f in fields(Recipe) if f.metadata["choices"]}


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
    for key in _FACTORS:
        if getattr(r, key) < 0:
            raise DistillError(f"{key}={getattr(r, key)} in {source}: it must be >= 0 (0 = off)")
    for key in _COUNTS:
        if getattr(r, key) < 1:
            raise DistillError(f"{key}={getattr(r, key)} in {source}: it must be >= 1")
    for key in _TAUS:
        if getattr(r, key) <= 0:
            raise DistillError(f"{key}={getattr(r, key)} in {source}: the temperature must be > 0")
    if not 0 < r.pseudo_conf < 1:
        raise DistillError(f"pseudo_conf={r.pseudo_conf} in {source}: a score threshold, between 0 and 1 (e.g. 0.5)")
    if r.feature_weighted and not (r.mimic > 0 or r.pkd > 0):
        raise DistillError(f"feature_weighted in {source} weights mimic and pkd, but both are 0: set one of them > 0")
    for key, choices in _CHOICES.items():
        if getattr(r, key) not in choices:
            raise suggest(getattr(r, key), choices, what=f"{key} in {source}")
    return r


def starts_pretrained(model: Any, pretrained: Any = True) -> bool:
    """Whether Ultralytics' trainer (its `setup_model`) starts the student `model` from weights: a `.pt` unless
    `pretrained=False`, or any model with `pretrained=` a checkpoint path (`pretrained=True` loads none for a yaml)."""
    return isinstance(pretrained, (str, Path)) or (pretrained is not False and str(model).lower().endswith(".pt"))


def default_recipe(pretrained: bool, lowres: bool = False, task: str = "detect") -> str:
    """The recipe a run without `recipe=` takes: LOWRES_RECIPE at a lower resolution than the teacher's, else
    DEFAULT_RECIPE for a student that starts from weights and, for one from scratch, its task's in TASK_RECIPES or
    SCRATCH_RECIPE."""
    return LOWRES_RECIPE if lowres else DEFAULT_RECIPE if pretrained else TASK_RECIPES.get(task, SCRATCH_RECIPE)


def load_recipe(spec: str | Path = DEFAULT_RECIPE, overrides: dict[str, Any] | None = None) -> Recipe:
    """Load a bundled recipe by name (`cwd`) or a user's by path (`my.yaml`), then apply single-value overrides."""
    source, values = _read(spec)
    _check(values, f"recipe '{source}'")
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    return _check({**values, **overrides}, "recipe overrides" if overrides else f"recipe '{source}'")
