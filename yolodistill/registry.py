"""The table of losses: for each loss a recipe can weight, its class, the named inputs it takes, the recipe keys its
constructor reads and its own compatibility check (cf. MMRazor's `loss_forward_mappings`, torchdistill's registry).

`Distiller` builds its losses from the rows and calls each with keywords from one dict of inputs; recipes.py derives
its loss keys from the table; checks.py runs each row's check before training. Adding a loss is its class
(losses.py), its row here and its recipe fields (recipes.py: the weight, named as the row, and its parameters).

The inputs, as `Distiller.forward` fills them (K classes, A anchors over all levels, R DFL bins per box side):
    student_maps, teacher_maps   per tapped level, the adapted student map and the teacher's, both N×C×H×W
    masks                        per level the teacher's top class score, N×1×H×W (with `feature_weighted`, else None)
    s_scores, t_scores           class logits N×K×A of student and teacher (the student's on the teacher's anchors)
    s_boxes, t_boxes             DFL box logits N×4R×A of student and teacher
    cross_scores, cross_boxes    CrossKD's cross predictions (`crosshead.CrossHead`), N×K×A and N×4R×A
  and what the task heads (Segment, Pose, OBB: each extends Detect) add, from the head output named in TASK_OUTPUTS:
    s_mask_coeffs, t_mask_coeffs mask coefficients N×M×A (M per model; the student's on the teacher's anchors)
    s_protos, t_protos           mask prototypes N×M×h×w (each model's own size)
    s_protos_adapted             the student's prototypes through the distiller's prototype adapter, N×M_t×h×w
    t_mask_boxes                 the teacher's box at each anchor, N×A×4 x1 y1 x2 y2 in pixels of its prototype maps
    s_kpts, t_kpts               keypoints N×J×D×A: x, y in grid cells from the anchor (each head's own decoding,
                                 `distiller.keypoint_offsets`), with D = 3 a visibility logit
    s_angles, t_angles           box angles N×1×A in radians (the student's on the teacher's anchors)
  and, for pseudo-labels, on the U unlabelled images of the batch (`unlabeled=`; U = 0 without them):
    s_unlabelled                 the student's raw head outputs (dict: boxes U×4R×A, scores U×K×A, feats)
    t_unlabelled_boxes           the teacher's decoded box at each anchor, U×A×4 x1 y1 x2 y2 normalised to the image
    t_unlabelled_scores          its class logits U×K×A
    box_criterion                the student's Ultralytics detection criterion (v8DetectionLoss)
  and, for ISRD, the images themselves:
    s_image                      the student's input-conv map decoded to the teacher's image (`adapters.ImageDecoder`),
                                 N×3×H_t×W_t
    teacher_img                  the batch at the teacher's resolution, N×3×H_t×W_t in [0, 1]
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn
from ultralytics.nn.modules.head import OBB, Pose, Segment

from .crosshead import CUT, branches
from .losses import (
    AngleKDLoss,
    BoxKDLoss,
    ClassKDLoss,
    CrossKDLoss,
    CWDLoss,
    ISRDLoss,
    KeypointKDLoss,
    LDLoss,
    MaskKDLoss,
    MimicLoss,
    PKDLoss,
    ProtoKDLoss,
    PseudoLabelLoss,
)
from .utils import DistillError

if TYPE_CHECKING:
    from .recipes import Recipe

FEATURE_INPUTS = ("student_maps", "teacher_maps", "masks")
# each task input (without its s_/t_ prefix) → the key of the head's output dict that holds it
TASK_OUTPUTS = {"mask_coeffs": "mask_coefficient", "protos": "proto", "kpts": "kpts", "angles": "angle"}
TASK_INPUTS = (*(f"{who}_{name}" for name in TASK_OUTPUTS for who in ("s", "t")), "t_mask_boxes", "s_protos_adapted")
UNLABELLED_INPUTS = ("s_unlabelled", "t_unlabelled_boxes", "t_unlabelled_scores", "box_criterion")
IMAGE_INPUTS = ("s_image", "teacher_img")
HEAD_INPUTS = ("s_scores", "t_scores", "s_boxes", "t_boxes", "cross_scores", "cross_boxes", *TASK_INPUTS,
               *UNLABELLED_INPUTS)  # fmt: skip


@dataclass(frozen=True)
class Heads:
    """What a compatibility check sees: both models' Detect heads, the number of teacher classes distilled (the
    data's, picked by name, or all of its own) and whether the student sees lower-resolution images."""

    teacher: nn.Module
    student: nn.Module
    teacher_nc: int
    lowres: bool


@dataclass(frozen=True)
class LossRow:
    """One loss: `loss(**{arg: recipe.<key> for arg, key in params})` is called with `inputs` as keywords; `check`
    (name, heads) raises a one-line DistillError where the two models cannot be compared this way."""

    loss: type[nn.Module]
    inputs: tuple[str, ...]
    params: Mapping[str, str]
    check: Callable[[str, Heads], None] | None = None

    def __post_init__(self):
        # a row whose inputs the loss does not take fails at import, not in the first training step
        unknown = set(self.inputs) - {*FEATURE_INPUTS, *HEAD_INPUTS, *IMAGE_INPUTS}
        if unknown:
            raise TypeError(f"{self.loss.__name__}: unknown inputs {sorted(unknown)}")
        inspect.signature(self.loss.forward).bind(None, **dict.fromkeys(self.inputs))
        inspect.signature(self.loss).bind(**dict.fromkeys(self.params))

    @property
    def head(self) -> bool:
        """True when the loss reads the Detect head's outputs (the teacher then runs its head too)."""
        return any(k in HEAD_INPUTS for k in self.inputs)

    @property
    def features(self) -> bool:
        """True when the loss reads tapped feature maps (and so needs the adapters)."""
        return "student_maps" in self.inputs

    def build(self, recipe: Recipe) -> nn.Module:
        """The loss module with its parameters from `recipe`."""
        return self.loss(**{arg: getattr(recipe, key) for arg, key in self.params.items()})


def _equal_classes(name: str, heads: Heads) -> None:
    if heads.teacher_nc != heads.student.nc:
        raise DistillError(
            f"{name} needs equal classes, but the teacher has {heads.teacher_nc} and the student {heads.student.nc}: "
            f"set {name}=0"
        )


def _equal_box_grids(name: str, heads: Heads) -> None:
    """DFL bins count grid cells of the image each model saw: same bins per side and the same grid."""
    if heads.teacher.reg_max != heads.student.reg_max:
        raise DistillError(
            f"{name} needs equal box distributions, but the teacher's head has reg_max={heads.teacher.reg_max} and the "
            f"student's {heads.student.reg_max} (an end-to-end head?): set {name}=0 or use a teacher of the student's "
            "family"
        )
    if heads.lowres:
        raise DistillError(
            f"{name} needs teacher_imgsz == imgsz (boxes on one grid): set {name}=0 for a lower-resolution student"
        )


def _cuttable_heads(name: str, heads: Heads) -> None:
    for who, head in (("teacher", heads.teacher), ("student", heads.student)):
        if not all(isinstance(b, nn.Sequential) and len(b) > CUT for b in branches(head)):
            raise DistillError(
                f"{name} needs a {who} head whose box and class branches run at least {CUT + 1} blocks (as "
                f"Ultralytics' Detect heads do), but {type(head).__name__} does not: set {name}=0"
            )
    if len(branches(heads.teacher)) != len(branches(heads.student)):
        raise DistillError(f"{name} needs teacher and student heads with equal levels: set {name}=0")


def _task_heads(kind: type[nn.Module], task: str) -> Callable[[str, Heads], None]:
    """The check of a task loss: both heads are the task's (`kind`, e.g. Segment), whose outputs it compares."""

    def check(name: str, heads: Heads) -> None:
        for who, head in (("teacher", heads.teacher), ("student", heads.student)):
            if not isinstance(head, kind):
                raise DistillError(
                    f"{name} needs {task} models, but the {who}'s head is {type(head).__name__}: set {name}=0"
                )

    return check


def _equal_keypoints(name: str, heads: Heads) -> None:
    """Keypoints of one layout, on one grid (decoded keypoints count grid cells of the image each model saw)."""
    _task_heads(Pose, "pose")(name, heads)
    if list(heads.teacher.kpt_shape) != list(heads.student.kpt_shape):
        raise DistillError(
            f"{name} needs equal keypoints, but the teacher has kpt_shape {list(heads.teacher.kpt_shape)} and the "
            f"student {list(heads.student.kpt_shape)}: set {name}=0"
        )
    if heads.lowres:
        raise DistillError(
            f"{name} needs teacher_imgsz == imgsz (keypoints on one grid): set {name}=0 for a lower-resolution student"
        )


def _upright_boxes(name: str, heads: Heads) -> None:
    """Pseudo-labels are upright boxes, through the student's detection criterion: not an OBB head's rotated ones."""
    for who, head in (("teacher", heads.teacher), ("student", heads.student)):
        if isinstance(head, OBB):
            raise DistillError(f"{name} labels upright boxes, but the {who}'s head is OBB (rotated ones): set {name}=0")


_MAPS = ("student_maps", "teacher_maps")

# name (the recipe's weight key and the `<name>_loss` column) → row, in the order of the loss columns
TABLE: dict[str, LossRow] = {
    "cwd": LossRow(CWDLoss, _MAPS, {"tau": "cwd_tau", "level_weights": "levels"}),
    "mimic": LossRow(MimicLoss, (*_MAPS, "masks"), {"level_weights": "levels"}),
    "pkd": LossRow(PKDLoss, (*_MAPS, "masks"), {"level_weights": "levels"}),
    "cls_kd": LossRow(
        ClassKDLoss,
        ("s_scores", "t_scores"),
        {"tau": "cls_kd_tau", "score_weighted": "cls_kd_weighted", "beta": "cls_kd_beta"},
        _equal_classes,
    ),
    "ld": LossRow(LDLoss, ("s_boxes", "t_boxes", "t_scores"), {"tau": "ld_tau"}, _equal_box_grids),
    "box_kd": LossRow(
        BoxKDLoss, ("s_boxes", "t_boxes", "t_scores", "s_scores"), {"weights": "box_kd_weights"}, _equal_box_grids
    ),
    # CrossKD's terms are class KD and LD: it shares their temperatures and BCKD's β (README, Recipes)
    "cross_kd": LossRow(
        CrossKDLoss,
        ("cross_scores", "cross_boxes", "t_scores", "t_boxes"),
        {"cls_tau": "cls_kd_tau", "ld_tau": "ld_tau", "cls_beta": "cls_kd_beta"},
        _cuttable_heads,
    ),
    "mask_kd": LossRow(
        MaskKDLoss,
        ("s_mask_coeffs", "s_protos", "t_mask_coeffs", "t_protos", "t_mask_boxes", "t_scores"),
        {"topk": "mask_kd_topk"},
        _task_heads(Segment, "segment"),
    ),
    "proto_kd": LossRow(ProtoKDLoss, ("s_protos_adapted", "t_protos"), {}, _task_heads(Segment, "segment")),
    "kpt_kd": LossRow(KeypointKDLoss, ("s_kpts", "t_kpts", "t_scores"), {}, _equal_keypoints),
    "angle_kd": LossRow(AngleKDLoss, ("s_angles", "t_angles", "t_scores"), {}, _task_heads(OBB, "obb")),
    "pseudo": LossRow(PseudoLabelLoss, UNLABELLED_INPUTS, {"conf": "pseudo_conf"}, _upright_boxes),
    "isrd": LossRow(ISRDLoss, IMAGE_INPUTS, {}),
}
