"""The distillation data flow in one place: teacher → taps → adapters → alignment → losses → weighted sum."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from ultralytics.utils.loss import v8DetectionLoss
from ultralytics.utils.tal import make_anchors

from .adapters import ImageDecoder, adapter, build_adapters
from .alignment import align, align_anchors, split_levels
from .balance import Balance
from .crosshead import CrossHead, cross_adapters
from .ensemble import mean_boxes, mean_scores
from .recipes import Recipe
from .registry import TABLE, TASK_OUTPUTS
from .seams import swapped
from .taps import FeatureTaps
from .unlabeled import batch_part

if TYPE_CHECKING:
    from .checks import Plan


def head_outputs(preds: Any) -> dict[str, Any]:
    """The raw Detect-head dict ({"boxes": N×4R×A, "scores": N×K×A, "feats": [N×C×H×W]}) from what an Ultralytics
    detection model returns: the dict itself in training, (decoded, dict) in eval, and for end-to-end heads (YOLO26,
    YOLOv10) a {"one2many", "one2one"} pair of which the dense one-to-many branch is taken while it exists.

    The task heads return the same in Ultralytics 8.4.190, their own outputs added to the dict: Segment
    "mask_coefficient" N×M×A and "proto" N×M×h×w (in eval its decoded part is a (decoded, proto) pair, the dict still
    second), Pose "kpts" N×(J·D)×A, OBB "angle" N×1×A."""
    if isinstance(preds, (tuple, list)):
        preds = preds[1]
    if "one2many" in preds:
        preds = preds["one2many"] if preds["one2many"] else preds["one2one"]  # fusion may drop one2many
    return preds


def keypoint_offsets(head: nn.Module, kpts: torch.Tensor) -> torch.Tensor:
    """A Pose head's raw keypoints N×(J·D)×A → N×J×D×A: x and y decoded as the head itself decodes them, in grid cells
    from the anchor point (Pose: 2·x̂ − ½, YOLO26's Pose26: x̂), the visibility logit (D = 3) as it is. Through the
    head's own `kpts_decode` with anchor points 0 and strides 1 set for the call (it reads both from the head, where
    its inference sets them), so teacher and student of different families are compared by what their keypoints
    mean, not by their raw values."""
    n, _, a = kpts.shape
    with swapped(head, anchors=kpts.new_zeros(2, a), strides=kpts.new_ones(1, a)):
        decoded = head.kpts_decode(kpts).view(n, *head.kpt_shape, a)
    return torch.cat([decoded[:, :, :2], kpts.view(n, *head.kpt_shape, a)[:, :, 2:]], dim=2)


def anchor_boxes(head: nn.Module, preds: dict[str, Any], size: tuple[float, float]) -> torch.Tensor:
    """A head's box at every anchor, N×A×4 (x1, y1, x2, y2) on a grid of `size` = (w, h) over the image: the DFL
    logits N×4R×A decoded to side distances by the head's own `dfl` (the expected bin; with one bin, YOLO26's, the
    value itself), around the anchor point, in grid cells of the anchor's level, times (size / level size). `size`
    (1, 1) gives boxes normalised to the image."""
    feats = preds["feats"]
    anchors, _ = make_anchors(feats, [1] * len(feats), 0.5)  # A×2 (x, y), grid cells
    scale = torch.cat([anchors.new_tensor([size[0] / w, size[1] / h]).expand(h * w, 2)
                       for h, w in (f.shape[-2:] for f in feats)])  # fmt: skip
    d = head.dfl(preds["boxes"].float())  # N×4×A: left, top, right, bottom
    xy, scale = anchors.t()[None].float(), scale.t().repeat(2, 1)[None].float()  # 1×2×A, 1×4×A
    return (torch.cat([xy - d[:, :2], xy + d[:, 2:]], dim=1) * scale).transpose(1, 2)


def mask_boxes(head: nn.Module, preds: dict[str, Any]) -> torch.Tensor:
    """A Segment head's box at every anchor, N×A×4 (x1, y1, x2, y2), in pixels of its prototype maps."""
    h, w = preds["proto"].shape[-2:]
    return anchor_boxes(head, preds, (w, h))


def _picked(preds: Any, classes: torch.Tensor | None) -> dict[str, Any]:
    """A teacher's head outputs (`head_outputs`) with its channels for the data's classes (None: all, in order)."""
    head = dict(head_outputs(preds))
    if classes is not None:
        head["scores"] = head["scores"].index_select(1, classes)
    return head


def score_maps(scores: torch.Tensor, feats: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per level, the top class probability at each location, N×1×H×W, from head logits N×K×A over all levels."""
    return split_levels(scores.detach().sigmoid().amax(dim=1, keepdim=True), feats)


class Distiller(nn.Module):
    """Frozen teacher, its taps, the trainable adapters and the losses of one recipe (MMRazor's "distiller").

    The student stays outside: `attach(student)` hooks its tapped layers (for CrossKD also its head branches at the cut,
    `crosshead.CrossHead`) and wraps its detection criterion, so the student's own forward fills the taps and its loss
    call adds the distillation terms.
    """

    def __init__(
        self,
        teacher: nn.Module,
        recipe: Recipe,
        teacher_layers: Sequence[int],
        student_layers: Sequence[int],
        teacher_channels: Sequence[int],
        student_channels: Sequence[int],
        student_head_channels: Sequence[int] = (),
        teacher_classes: Sequence[int] | None = None,
        members: Sequence[tuple[nn.Module, Sequence[int] | None]] = (),
        student_protos: int = 0,
        image_decoder: tuple[int, int] = (0, 0),
    ):
        super().__init__()
        self.teacher = teacher
        self.recipe = recipe
        feature = recipe.uses_features
        # Every trainable connector in one list (the trainer optimises, clips, broadcasts and checkpoints it): the
        # feature adapters, one per tap, then CrossKD's, one per head branch (`student_head_channels`: the student's
        # channels at the cut, crosshead.cut_channels), then ISRD's decoder (`image_decoder`: the student's input-conv
        # channels and the upscale to the teacher's image), then proto_kd's, the student's `student_protos` prototype
        # maps to the teacher's.
        self.adapters = build_adapters(student_channels if feature else [], teacher_channels, recipe.adapter)
        self.n_feature_adapters = len(self.adapters)
        self.weights = recipe.weights()
        # the inputs the recipe's losses take (registry.TABLE): forward computes only these
        self.inputs = {k for name in self.weights for k in TABLE[name].inputs}
        self.cross = None
        if "cross_scores" in self.inputs:
            self.adapters.extend(cross_adapters(teacher.model[-1], student_head_channels, recipe.adapter))
            adapters = self.adapters[self.n_feature_adapters :]
            self.cross = CrossHead(teacher.model[-1], adapters, recipe.cross_kd_align)
        self.decoder_index = None  # ISRD's decoder's place in `adapters` (trained, checkpointed, broadcast with them)
        if "s_image" in self.inputs:
            self.decoder_index = len(self.adapters)
            self.adapters.append(ImageDecoder(*image_decoder))
        if "s_protos_adapted" in self.inputs:  # always the last adapter: `task_inputs` finds it there
            self.adapters.append(adapter(student_protos, teacher.model[-1].nm, recipe.adapter))
        self.losses = nn.ModuleDict({name: TABLE[name].build(recipe) for name in self.weights})
        self.names = [f"{name}_loss" for name in self.weights]  # their columns in the progress bar and results.csv
        self.factor = 1.0  # the recipe's schedule, set by the trainer at each epoch start (a float: no host sync)
        # A teacher with more classes than the data (a COCO teacher): its class channels for the data's classes, in the
        # data's order, picked once from its head outputs, so every loss and weight reads the data's classes only.
        classes = None if teacher_classes is None else torch.tensor(list(teacher_classes))
        self.register_buffer("teacher_classes", classes, persistent=False)
        # More teachers (an ensemble, ensemble.py): their head outputs, each with its own class channels, are averaged
        # with the teacher's; `teacher` alone gives the taps and the feature maps the anchors are aligned on.
        self.members = nn.ModuleList(m for m, _ in members)
        for i, (_, c) in enumerate(members):
            self.register_buffer(f"member_classes_{i}", None if c is None else torch.tensor(list(c)), persistent=False)
        self.balance = Balance(recipe.balance)
        # steps whose distillation was dropped for a non-finite teacher output; read (and reset) once an epoch
        self.register_buffer("dropped_steps", torch.zeros((), dtype=torch.long), persistent=False)
        self.student_layers = list(student_layers)
        # Without a head loss the teacher never runs the layers after its last tap (its Detect head).
        self.teacher_stop = None if recipe.uses_head else max(teacher_layers)
        self.teacher_taps = FeatureTaps(teacher, teacher_layers if feature else [])
        self.student_taps: FeatureTaps | None = None
        self.input_tap: FeatureTaps | None = None  # the student's input conv (layer 0), for ISRD
        self._student: nn.Module | None = None
        self.box_criterion: v8DetectionLoss | None = None  # the student's, set by `attach` where pseudo-labels need it

    @classmethod
    def from_plan(cls, plan: Plan) -> Distiller:
        """The distiller preflight planned (`checks.Plan`: teacher, recipe, taps, channels, class channels)."""
        return cls(
            plan.teacher,
            plan.recipe,
            plan.teacher_layers,
            plan.student_layers,
            plan.teacher_channels,
            plan.student_channels,
            plan.student_head_channels,
            plan.teacher_classes,
            list(zip(plan.members, plan.member_classes)),
            plan.student_protos,
            plan.image_decoder,
        )

    def train(self, mode: bool = True) -> Distiller:
        """Adapters follow `mode`; the teacher stays in eval mode (BatchNorm running statistics)."""
        super().train(mode)
        self.teacher.eval()
        self.members.eval()
        return self

    def forward(
        self, teacher_img: torch.Tensor, student_preds: Any, labelled: int | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Distillation terms for the batch the student has just run on.

        Args:
            teacher_img: N×3×H_t×W_t, the batch at the teacher's resolution (the student's own input when equal).
            student_preds: what the student's forward returned (its Detect head's raw outputs).
            labelled: how many of the N images (the first ones) have labels; None: all of them.

        Returns:
            A K-vector of weighted losses (K = losses in the recipe, in `weights` order) and the same values detached,
            keyed `<loss>_loss` for Ultralytics' progress bar and results.csv.
        """
        names = self.names
        if self.factor == 0:  # the schedule has distillation off (final close_mosaic epochs): the teacher need not run
            terms = torch.zeros(len(names), device=teacher_img.device)
            return terms, dict(zip(names, terms))
        with torch.no_grad():
            # `embed` ends the forward at the last tapped layer; None runs the whole model, head included
            t_out = self.teacher.predict(teacher_img, embed=None if self.teacher_stop is None else [self.teacher_stop])
            members = [_picked(m.predict(teacher_img), getattr(self, f"member_classes_{i}"))
                       for i, m in enumerate(self.members)]  # fmt: skip
        teacher = self.teacher_taps.collect()
        t_head = _picked(t_out, self.teacher_classes) if self.recipe.uses_head else {}
        if members:
            heads = [t_head, *members]
            t_head["scores"] = mean_scores([h["scores"] for h in heads])
            t_head["boxes"] = mean_boxes([h["boxes"] for h in heads], self.teacher.model[-1].reg_max)
        # A non-finite teacher output drops this step's distillation (on the device: no host sync). The values are
        # zeroed too, because a NaN multiplied by 0 in the forward still sends NaN gradients into the student.
        outputs = ("scores", "boxes", *(TASK_OUTPUTS[k[2:]] for k in self.inputs if k[2:] in TASK_OUTPUTS))
        values = [*teacher, *(t_head[k] for k in outputs if k in t_head)]
        # (ISRD alone reads no teacher output: nothing to check)
        finite = (
            torch.stack([torch.isfinite(v).all() for v in values]).all()
            if values
            else teacher_img.new_ones((), dtype=torch.bool)
        )
        self.dropped_steps += ~finite
        teacher = [torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0) for t in teacher]
        t_head = {k: torch.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) if k in outputs else v
                  for k, v in t_head.items()}  # fmt: skip
        student = self.student_taps.collect()
        student = align([a(s) for a, s in zip(self.adapters[: self.n_feature_adapters], student)], teacher)
        inputs: dict[str, Any] = {"student_maps": student, "teacher_maps": teacher, "masks": None}
        if self.recipe.uses_head:
            s_head = head_outputs(student_preds)
            inputs.update(t_scores=t_head["scores"], t_boxes=t_head["boxes"], s_boxes=s_head["boxes"])
            # on the teacher's anchors; the boxes stay on the student's (the checks refuse box losses at lower res)
            inputs["s_scores"] = align_anchors(s_head["scores"], s_head["feats"], t_head["feats"])
            if self.recipe.feature_weighted:
                inputs["masks"] = score_maps(t_head["scores"], t_head["feats"])
            inputs.update(self.task_inputs(s_head, t_head))
            if "s_unlabelled" in self.inputs:
                inputs.update(self.unlabelled_inputs(s_head, t_head, labelled))
        if self.cross is not None:
            c_boxes, c_scores = self.cross(t_head["feats"])
            if self.teacher_classes is not None:
                c_scores = c_scores.index_select(1, self.teacher_classes)
            inputs.update(cross_scores=c_scores, cross_boxes=c_boxes)
        if self.decoder_index is not None:
            [stem] = self.input_tap.collect()
            inputs["s_image"] = self.adapters[self.decoder_index](stem, teacher_img.shape[-2:])
            inputs["teacher_img"] = teacher_img
        terms = []
        for name, w in self.weights.items():
            loss = self.losses[name](**{k: inputs[k] for k in TABLE[name].inputs})
            terms.append(w * self.factor * loss)
        terms = torch.stack(terms) * finite
        return terms, dict(zip(names, terms.detach()))

    def task_inputs(self, s_head: dict[str, Any], t_head: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The task inputs the recipe's losses take (registry.TASK_OUTPUTS), from both heads' output dicts: per-anchor
        outputs on the teacher's anchors (keypoints, which the checks keep on one grid, decoded by each model's head:
        `keypoint_offsets`), prototype maps as they are (the student's also through its adapter, for proto_kd), and
        the teacher's boxes that mask distillation crops to (`mask_boxes`)."""
        inputs = {}
        for name, key in TASK_OUTPUTS.items():
            if f"t_{name}" not in self.inputs:
                continue
            s, t = s_head[key], t_head[key]
            if name == "kpts":
                s, t = keypoint_offsets(self._student.model[-1], s), keypoint_offsets(self.teacher.model[-1], t)
            elif name != "protos":
                s = align_anchors(s, s_head["feats"], t_head["feats"])
            inputs.update({f"s_{name}": s, f"t_{name}": t})
        if "s_protos_adapted" in self.inputs:
            inputs["s_protos_adapted"] = self.adapters[-1](s_head["proto"])
        if "t_mask_boxes" in self.inputs:
            inputs["t_mask_boxes"] = mask_boxes(self.teacher.model[-1], t_head)
        return inputs

    def unlabelled_inputs(self, s_head: dict[str, Any], t_head: dict[str, Any], labelled: int | None) -> dict[str, Any]:
        """What pseudo-labelling reads (`losses.PseudoLabelLoss`): both heads' outputs on the images after the first
        `labelled` (the teacher's boxes decoded, normalised to the image) and the student's detection criterion."""
        part = slice(t_head["scores"].shape[0] if labelled is None else labelled, None)
        t_unlabelled = batch_part({k: t_head[k] for k in ("boxes", "scores", "feats")}, part)
        return {
            "s_unlabelled": batch_part(s_head, part),
            "t_unlabelled_boxes": anchor_boxes(self.teacher.model[-1], t_unlabelled, (1.0, 1.0)),
            "t_unlabelled_scores": t_unlabelled["scores"],
            "box_criterion": self.box_criterion,
        }

    def attach(self, student: nn.Module) -> None:
        """Hook the student's tapped layers and wrap its detection criterion with the distillation terms."""
        self.detach()
        self._student = student
        self.student_taps = FeatureTaps(student, self.student_layers if self.recipe.uses_features else [])
        self.input_tap = FeatureTaps(student, [0] if self.decoder_index is not None else [])
        if self.cross is not None:
            self.cross.attach(student.model[-1])
        detection = getattr(student, "criterion", None) or student.init_criterion()
        # pseudo-labels are boxes: Ultralytics' box criterion of the student whatever its task (a Segment or Pose
        # criterion would want masks or keypoints too)
        self.box_criterion = v8DetectionLoss(student) if "box_criterion" in self.inputs else None
        student.criterion = DistillationCriterion(detection, self)
        plain_loss = student.loss

        def loss(batch: dict, preds: Any = None):
            # A step that raises (e.g. CUDA out of memory, which Ultralytics retries with a smaller batch) must not
            # leave its tapped maps alive into the retry.
            try:
                return plain_loss(batch, preds)
            finally:
                self.teacher_taps.clear()
                self.student_taps.clear()
                self.input_tap.clear()
                if self.cross is not None:
                    self.cross.clear()

        student.loss = loss  # the training step's `model(batch)` calls `self.loss(batch)`

    def detach(self) -> None:
        """Undo `attach`: remove the hooks and give the student back its plain detection criterion."""
        if self.student_taps is not None:
            self.student_taps.remove()
            self.student_taps = None
            self.input_tap.remove()
            self.input_tap = None
        if self.cross is not None:
            self.cross.detach()
        if self._student is not None:
            self._student.criterion = self._student.criterion.detection
            del self._student.loss  # back to the class's method
            self._student = None


class DistillationCriterion:
    """Ultralytics criterion wrapper: detection loss followed by the distillation terms.

    Ultralytics' criteria return (loss vector × batch size, detached items); the distillation terms (rescaled against
    the detection loss by `balance.Balance` when the recipe asks) are appended and scaled by the batch size the same
    way, so the trainer's `loss.sum()` is the total loss.
    """

    def __init__(self, detection, distiller: Distiller):
        self.detection = detection
        self.distiller = distiller

    def __call__(self, preds, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # With unlabelled images appended (unlabeled.py) the first `labelled` images have labels: the detection loss
        # reads only those, the distillation terms all of them, both scaled by the labelled count.
        n = batch.get("labelled", batch["img"].shape[0])
        loss, items = self.detection(preds if n == batch["img"].shape[0] else batch_part(preds, slice(0, n)), batch)
        terms, _ = self.distiller(batch.get("teacher_img", batch["img"]), preds, n)
        terms = self.distiller.balance.scaled(loss.sum() / n, terms)
        return torch.cat([loss.view(-1), terms * n]), {**items, **dict(zip(self.distiller.names, terms.detach()))}

    def update(self) -> None:
        """Forward Ultralytics' per-epoch criterion update (end-to-end heads schedule their loss weights)."""
        if hasattr(self.detection, "update"):
            self.detection.update()
