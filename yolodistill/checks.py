"""Everything about user input that can be checked before training starts, each failure a one-line DistillError."""

from __future__ import annotations

import copy
import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import yaml
from torch import nn
from ultralytics.cfg import DEFAULT_CFG_DICT, check_cfg
from ultralytics.data.utils import IMG_FORMATS, check_det_dataset, img2label_paths
from ultralytics.nn.tasks import (
    DetectionModel,
    OBBModel,
    PoseModel,
    SegmentationModel,
    guess_model_task,
    load_checkpoint,
    yaml_model_load,
)
from ultralytics.utils.checks import check_model_file_from_stem
from ultralytics.utils.torch_utils import parse_device, select_device

from .crosshead import cut_channels
from .data import resolve_data
from .recipes import RECIPE_KEYS, Recipe, default_recipe, load_recipe, load_recipe_value, starts_pretrained
from .registry import FEATURE_INPUTS, TABLE, TASK_INPUTS, Heads
from .taps import FeatureTaps, detect_inputs
from .teacher import _UNREADABLE, fetch_release, load_teacher, model_task
from .unlabeled import UNLABELED_RATIO, find_images, list_sha256
from .utils import DistillError, suggest

# yolodistill's own train arguments, accepted next to Ultralytics' (None: take the value from the recipe).
DISTILL_ARGS: dict[str, Any] = {
    "teacher": None,  # path of the teacher checkpoint, or a list of them (an ensemble, ensemble.py)
    "recipe": None,  # bundled recipe name or path to a recipe yaml; None = recipes.default_recipe's pick
    "teacher_imgsz": None,  # teacher input size; None = imgsz (see alignment.py for a lower-resolution student)
    "unlabeled": None,  # images without labels to distil from (unlabeled.py); None = the data yaml's `unlabeled:`
    "unlabeled_ratio": None,  # unlabelled images per labelled one in a batch; None = unlabeled.UNLABELED_RATIO
    **dict.fromkeys(RECIPE_KEYS),
}
# the student's model class per task, as Ultralytics' task trainers build it in get_model
MODELS = {"detect": DetectionModel, "segment": SegmentationModel, "pose": PoseModel, "obb": OBBModel}


def merge_cfg(args: dict[str, Any]) -> dict[str, Any]:
    """Ultralytics' ways of giving arguments: `cfg=file.yaml` supplies a whole set (yolodistill's keys included) under
    the keys given beside it, `student` is `model`, and a bare release name (`yolov8n`) means its `.pt` as in `yolo`.
    """
    args = dict(args)
    if args.get("cfg"):
        path = Path(args.pop("cfg"))
        try:
            content = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise DistillError(f"cfg '{path}' could not be read ({_one_line(e)}): pass a yaml of key: value") from e
        if not isinstance(content, dict):
            raise DistillError(f"cfg '{path}' must be a mapping of key: value, got {type(content).__name__}")
        args = {**{k: v for k, v in content.items() if k != "cfg"}, **args}
    if "student" in args:
        if "model" in args:
            raise DistillError("both student= and model= given: they are the same argument, keep one")
        args["model"] = args.pop("student")
    teacher = args.get("teacher")
    if isinstance(teacher, str) and teacher.startswith("[") and teacher.endswith("]"):  # the CLI's teacher=[a.pt,b.pt]
        args["teacher"] = [t.strip().strip("'\"") for t in teacher[1:-1].split(",") if t.strip()]
    for k in ("model", "teacher"):
        if isinstance(args.get(k), str):
            args[k] = str(check_model_file_from_stem(args[k]))
    if isinstance(args.get("teacher"), (list, tuple)):
        args["teacher"] = [str(check_model_file_from_stem(str(t))) for t in args["teacher"]]
        if len(args["teacher"]) == 1:
            args["teacher"] = args["teacher"][0]
    return args


def check_args(args: dict[str, Any], cfg: dict[str, Any] | None = None) -> None:
    """Reject misspelled keys (naming the closest valid ones), values of the wrong type for Ultralytics keys and two
    distillations at once. `cfg` is the trainer's base config, whose keys are valid too (a DDP worker's has
    `save_dir`)."""
    valid = {*DEFAULT_CFG_DICT, *(cfg or {}), *DISTILL_ARGS}
    for k in args:
        if k not in valid:
            raise suggest(k, valid)
    if args.get("distill_model"):
        raise DistillError(
            "distill_model= is Ultralytics' own distillation and teacher= is yolodistill's: drop distill_model"
        )
    try:
        check_cfg({k: v for k, v in args.items() if k in DEFAULT_CFG_DICT}, hard=True)
    except (TypeError, ValueError) as e:
        raise DistillError(str(e).strip().splitlines()[0]) from e


def check_device(device: Any) -> None:
    """Ultralytics' own device check (select_device, which the trainer calls next), run first so that a device this
    machine lacks is one line naming what it has, instead of Ultralytics' multi-line ValueError and traceback."""
    try:
        select_device(device, verbose=False)
    except ValueError as e:
        n = torch.cuda.device_count()
        has = f"{n} CUDA device(s), device={','.join(map(str, range(n)))}" if n else "no CUDA device"
        fix = "use those ids or device=cpu" if n else "use device=cpu"
        raise DistillError(f"device={parse_device(device)} was asked for, but this machine has {has}: {fix}") from e


@dataclass
class Plan:
    """What preflight found: the loaded teacher and how to connect it to the student; the one settings object, whose
    `settings()` DDP workers, experiment trackers and checkpoints take their distillation settings from."""

    teacher: nn.Module
    teacher_path: str
    recipe: Recipe
    recipe_name: str
    teacher_layers: list[int]
    student_layers: list[int]
    teacher_channels: list[int]
    student_channels: list[int]
    teacher_imgsz: int
    teacher_sha256: str
    student_head_channels: list[int]  # the student's channels where CrossKD cuts its head (empty without cross_kd)
    teacher_classes: list[int] | None  # teacher class channel of each data class (by name); None: same classes
    student_protos: int = 0  # the student's prototype maps, M_s, where proto_kd adapts them (else 0)
    image_decoder: tuple[int, int] = (0, 0)  # ISRD's decoder: the student's input-conv channels and upscale r (else 0)
    members: list[nn.Module] = field(default_factory=list)  # the ensemble's other teachers (ensemble.py)
    member_paths: list[str] = field(default_factory=list)
    member_sha256: list[str] = field(default_factory=list)
    member_classes: list[list[int] | None] = field(default_factory=list)
    unlabeled: str | None = None  # where the unlabelled images come from (a folder, .txt list or glob), resolved
    unlabeled_files: list[str] = field(default_factory=list)  # the images found there, each checked readable
    unlabeled_ratio: float = UNLABELED_RATIO

    def settings(self) -> dict[str, Any]:
        """The resolved distillation settings, flat: the teacher's path and hash, the recipe's name, `teacher_imgsz`,
        the unlabelled images' source and ratio, and every recipe value (plain types)."""
        paths, hashes = [self.teacher_path, *self.member_paths], [self.teacher_sha256, *self.member_sha256]
        return {"teacher": paths if self.members else paths[0], "teacher_sha256": hashes if self.members else hashes[0],
                "recipe": self.recipe_name,
                "teacher_imgsz": self.teacher_imgsz, "unlabeled": self.unlabeled,
                "unlabeled_ratio": self.unlabeled_ratio if self.unlabeled else None,
                **self.recipe.to_dict()}  # fmt: skip

    def args(self) -> dict[str, Any]:
        """`settings()` as yolodistill's train args (keys of DISTILL_ARGS): what a rebuilt trainer (a DDP worker)
        needs to make the same plan."""
        return {k: v for k, v in self.settings().items() if k in DISTILL_ARGS}

    def state(self, imgsz: int) -> dict[str, Any]:
        """`settings()` as the checkpoint's extra key holds them (and distill.yaml), with the student's `imgsz` and
        the taps; `resume_args` reads them back."""
        s = self.settings()
        return {"teacher": s["teacher"], "teacher_sha256": s["teacher_sha256"], "imgsz": imgsz,
                "recipe_name": s["recipe"], "recipe": self.recipe.to_dict(), "teacher_imgsz": s["teacher_imgsz"],
                "teacher_layers": self.teacher_layers, "student_layers": self.student_layers,
                "unlabeled": s["unlabeled"], "unlabeled_ratio": s["unlabeled_ratio"],
                "unlabeled_images": len(self.unlabeled_files),
                "unlabeled_sha256": list_sha256(self.unlabeled_files) if self.unlabeled else None}  # fmt: skip


def _one_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _load_data(data: Any) -> dict:
    if not data:
        raise DistillError("no data given: pass data=path/to/data.yaml (or a name from datasets.yaml, e.g. synthetic)")
    try:
        return check_det_dataset(resolve_data(data))
    except Exception as e:  # Ultralytics raises many types for a bad dataset; all are the user's file to fix
        raise DistillError(f"data '{data}' could not be loaded ({_one_line(e)}): pass a valid data yaml") from e


def _load_student(model: Any, data: dict, task: str, teacher: str) -> nn.Module:
    """The student as Ultralytics' task trainer's get_model will build it: from its yaml with the data's `nc` classes
    (and, for pose, the data's `kpt_shape`), so a pretrained `.pt` with other classes (`yolov8n.pt` and COCO's 80) is
    checked with the head rebuilt for the data, as `yolo train model=x.pt` rebuilds it. Its weights do not matter here
    (only shapes are checked). A student of another task than the teacher's (`task`) is refused."""
    if not model:
        raise DistillError("no student given: pass student=yolov8n.yaml (a model yaml or a .pt to start from)")
    try:
        if str(model).endswith(".pt"):
            cfg = load_checkpoint(fetch_release(model, "student"), device=torch.device("cpu"))[0].yaml
        else:
            cfg = yaml_model_load(model)
        s_task = guess_model_task(cfg)
        if s_task == task:
            kpts = {"data_kpt_shape": tuple(data["kpt_shape"])} if task == "pose" else {}
            # a copy: the model writes the new nc into the yaml dict it is given
            student = MODELS[task](copy.deepcopy(cfg), nc=data["nc"], verbose=False, **kpts)
    except _UNREADABLE as e:
        raise DistillError(f"student '{model}' not found or invalid ({_one_line(e)}): pass e.g. yolov8n.yaml") from e
    if s_task != task:
        suffix = {"detect": "", "segment": "-seg", "pose": "-pose", "obb": "-obb"}[task]
        raise DistillError(
            f"student '{model}' is a {s_task} model but teacher '{teacher}' is a {task} model: use a {task} student, "
            f"e.g. yolov8n{suffix}.yaml"
        )
    return student.eval()


def _check_task(task: str, trainer_task: str, teacher: str, t_head: nn.Module, data: dict, data_name: Any) -> None:
    """The teacher's task is the run's: the trainer's (Ultralytics' trainer of that task) and the data's must agree.
    A pose dataset is one with `kpt_shape` (Ultralytics reads its labels as keypoints only then), of the teacher's."""
    if task != trainer_task:
        raise DistillError(
            f"teacher '{teacher}' is a {task} model but this trainer trains {trainer_task} models: use yolodistill "
            "train or distill(), which pick the trainer of the teacher's task"
        )
    kpt_shape = data.get("kpt_shape")
    if (task == "pose") != (kpt_shape is not None):
        has = f"has kpt_shape {kpt_shape} (a pose dataset)" if kpt_shape else "has no kpt_shape (not a pose dataset)"
        raise DistillError(f"data '{data_name}' {has} but teacher '{teacher}' is a {task} model: use {task} data")
    if task in ("segment", "obb") and _label_values(data) == 5:
        raise DistillError(
            f"data '{data_name}' has box labels only (cls cx cy w h) but teacher '{teacher}' is a {task} model: use "
            f"{task} data ({'polygons' if task == 'segment' else 'rotated boxes, cls x1 y1 ... x4 y4'})"
        )
    if task == "pose" and list(t_head.kpt_shape) != list(kpt_shape):
        raise DistillError(
            f"teacher '{teacher}' predicts keypoints of shape {list(t_head.kpt_shape)} but data '{data_name}' has "
            f"kpt_shape {list(kpt_shape)}: use a teacher trained on this data's keypoints"
        )


def _label_values(data: dict, images: int = 50) -> int | None:
    """Values per line of the first non-empty label file among the first `images` training images (5: boxes only;
    Ultralytics reads polygons and rotated boxes from longer lines), None when there is none to read. Lazy: a large
    dataset is not listed."""
    splits = data["train"] if isinstance(data["train"], list) else [data["train"]]
    found = (
        f
        for split in map(Path, splits)
        for f in (split.rglob("*") if split.is_dir() else [])
        if f.suffix[1:].lower() in IMG_FORMATS
    )
    for label in map(Path, img2label_paths([str(f) for f in itertools.islice(found, images)])):
        line = next((x for x in label.read_text().splitlines() if x.strip()), None) if label.is_file() else None
        if line:
            return len(line.split())
    return None


def teacher_classes(teacher: str, t_names: list[str], d_names: list[str]) -> list[int] | None:
    """The teacher's class channel for each of the data's classes, matched by name in the data's order (a COCO teacher
    of a person/car/bike student); None when the teacher's classes are the data's, in order. A teacher missing one of
    the data's names is refused."""
    if t_names == d_names:
        return None
    missing = [n for n in d_names if n not in t_names]
    if missing:
        shown = ", ".join(map(repr, missing[:6])) + ("..." if len(missing) > 6 else "")
        raise DistillError(
            f"teacher '{teacher}' has no class {shown} ({len(missing)} of the data's {len(d_names)} missing): use a "
            "teacher trained on classes that include all of the data's"
        )
    return [t_names.index(n) for n in d_names]


def _unlabeled(args: SimpleNamespace, distill: dict[str, Any], data: dict) -> tuple[str | None, list[str], float]:
    """The unlabelled images (`unlabeled=`, else the data yaml's `unlabeled:` key, relative to its `path` as `train:`
    is): their source, resolved, the images found there and the ratio; no source, no images."""
    spec, ratio = distill["unlabeled"], distill["unlabeled_ratio"]
    base = None
    if spec is None and data.get("unlabeled"):
        spec, base = data["unlabeled"], Path(data["path"])
    if spec is None:
        if ratio is not None:
            raise DistillError(f"unlabeled_ratio={ratio} given, but no unlabeled images: pass unlabeled=DIR too")
        return None, [], UNLABELED_RATIO
    ratio = UNLABELED_RATIO if ratio is None else ratio
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0:
        raise DistillError(
            f"unlabeled_ratio={ratio} must be a number > 0 (unlabelled images per labelled one in a batch), e.g. 1"
        )
    if args.rect:
        raise DistillError("rect=True cannot be used with unlabeled images (batches of one shape): set rect=False")
    files = find_images(spec, base)
    source = Path(spec) if base is None or Path(spec).is_absolute() else base / spec
    return str(source), files, float(ratio)


def _check_ensemble(recipe: Recipe, paths: list[str], teachers: list[nn.Module]) -> None:
    """Teachers averaged into one (ensemble.py) must put their anchors and box bins where the first one does; feature
    losses and CrossKD read one teacher's own layers, and the task losses one teacher's own masks, keypoints or angles,
    so they stay with a single teacher."""
    # the task losses too: a mask's coefficients and prototypes, or keypoints, are not averaged across models
    one_teacher = {*FEATURE_INPUTS, "cross_scores", "cross_boxes", *TASK_INPUTS}  # read from the table
    feature = [k for k, row in TABLE.items() if one_teacher & set(row.inputs) and getattr(recipe, k) > 0]
    if feature:
        raise DistillError(
            f"an ensemble of teachers distils head outputs (cls_kd, ld, box_kd), but the recipe also has "
            f"{', '.join(feature)}: set {'=0, '.join(feature)}=0, or give one teacher"
        )
    first, head = teachers[0], teachers[0].model[-1]
    for path, t in zip(paths[1:], teachers[1:]):
        if t.stride.tolist() != first.stride.tolist() or t.model[-1].reg_max != head.reg_max:
            raise DistillError(
                f"teacher '{path}' (strides {t.stride.tolist()}, reg_max {t.model[-1].reg_max}) cannot be averaged "
                f"with '{paths[0]}' (strides {first.stride.tolist()}, reg_max {head.reg_max}): give teachers whose "
                "heads have the same strides and box bins (one family, e.g. YOLOv8 and YOLO11)"
            )


def _layers(model: nn.Module, layers: Any, who: str) -> list[int]:
    layers = list(layers) if layers else detect_inputs(model)
    last = len(model.model) - 1  # the Detect head itself has no map to tap
    for i in layers:
        if not 0 <= i < last:
            raise DistillError(f"{who} layer {i} out of range: the {who} has layers 0..{last - 1} before its head")
    return layers


def _probe(model: nn.Module, layers: list[int], size: int) -> list[tuple[int, int]]:
    """(channels, stride) of each tapped map, from one forward of a blank size×size image."""
    with FeatureTaps(model, layers) as taps, torch.no_grad():
        model.predict(torch.zeros(1, 3, size, size), embed=[max(layers)])
        maps = taps.collect()
    for i, m in zip(layers, maps):
        if not isinstance(m, torch.Tensor) or m.ndim != 4:
            raise DistillError(f"layer {i} does not output an N×C×H×W map: tap a backbone or neck layer")
    return [(m.shape[1], size // m.shape[-1]) for m in maps]


def _image_decoder(student: nn.Module, scale: float, size: int) -> tuple[int, int]:
    """ISRD's decoder for `student`: the channels C of its input conv (layer 0) and the upscale r from that conv's map
    to the teacher's image, its stride times `scale` = teacher_imgsz / imgsz (rounded: the decoder resizes the rest)."""
    [(channels, stride)] = _probe(student, [0], size)
    return channels, max(1, round(stride * scale))


def _sizes(args: SimpleNamespace, teacher_imgsz: int | None, stride: int) -> int:
    imgsz = args.imgsz
    teacher_imgsz = teacher_imgsz or imgsz
    if not isinstance(imgsz, int) or not isinstance(teacher_imgsz, int):
        raise DistillError(f"imgsz={imgsz} and teacher_imgsz={teacher_imgsz} must be single integers for training")
    for name, v in (("imgsz", imgsz), ("teacher_imgsz", teacher_imgsz)):
        if v % stride or v <= 0:
            fix = max(stride, round(v / stride) * stride)
            raise DistillError(f"{name}={v} is not a multiple of the largest stride {stride}: use e.g. {name}={fix}")
    if teacher_imgsz < imgsz:
        raise DistillError(
            f"teacher_imgsz={teacher_imgsz} is smaller than imgsz={imgsz}: the teacher sees the larger image"
        )
    if teacher_imgsz != imgsz and args.multi_scale:
        raise DistillError("multi_scale is not supported with teacher_imgsz != imgsz: set multi_scale=0")
    return teacher_imgsz


def _check_head_losses(
    recipe: Recipe, teacher: nn.Module, student: nn.Module, lowres: bool, t_nc: int | None = None
) -> None:
    """A loss whose inputs the two models cannot give comparably (each row's own check in `registry.TABLE`) is
    refused. `t_nc`: the teacher's classes that are distilled (the data's, selected by name; None: all of its own)."""
    t_head, s_head = teacher.model[-1], student.model[-1]
    heads = Heads(t_head, s_head, t_head.nc if t_nc is None else t_nc, lowres)
    for name in recipe.weights():
        if TABLE[name].check is not None:
            TABLE[name].check(name, heads)


def preflight(args: SimpleNamespace, distill: dict[str, Any]) -> Plan:
    """Check data, teacher, student, recipe, taps and sizes; load the teacher. Raises DistillError on bad input.

    Args:
        args: the Ultralytics train args (data, model = the student, task, imgsz, ...).
        distill: yolodistill's own args, keys of DISTILL_ARGS.
    """
    data = _load_data(args.data)
    unlabeled, unlabeled_files, ratio = _unlabeled(args, distill, data)
    paths = [str(t) for t in distill["teacher"]] if isinstance(distill["teacher"], list) else [distill["teacher"]]
    teachers = [load_teacher(t) for t in paths]
    task = model_task(teachers[0])
    for path, t in zip(paths, teachers):  # every member of an ensemble: the task of the first, and the data's
        if model_task(t) != task:
            raise DistillError(
                f"teacher '{path}' is a {model_task(t)} model but teacher '{paths[0]}' is a {task} model: an ensemble "
                "is of one task"
            )
        _check_task(task, args.task, path, t.model[-1], data, args.data)
    student = _load_student(args.model, data, task, paths[0])
    d_names = list(data["names"].values())
    picks = [None if args.single_cls else teacher_classes(p, list(t.names.values()), d_names)
             for p, t in zip(paths, teachers)]  # fmt: skip
    teacher, classes = teachers[0], picks[0]
    stride = max(32, int(teacher.stride.max()), int(student.stride.max()))
    teacher_imgsz = _sizes(args, distill["teacher_imgsz"], stride)
    lowres = teacher_imgsz != args.imgsz
    recipe_name = distill["recipe"] or default_recipe(starts_pretrained(args.model, args.pretrained), lowres, task)
    recipe = load_recipe(recipe_name, {k: distill[k] for k in RECIPE_KEYS})
    if not recipe.weights():
        raise DistillError(
            "the recipe has no loss weight > 0: set one (e.g. cls_kd=0.5), or use 'yolo train' for a plain student"
        )
    if recipe.pseudo > 0 and not unlabeled:
        raise DistillError(
            f"pseudo={recipe.pseudo:g} labels unlabelled images with the teacher's boxes, but there are none: pass "
            "unlabeled=DIR, or set pseudo=0"
        )
    t_layers = _layers(teacher, recipe.teacher_layers, "teacher")
    s_layers = _layers(student, recipe.student_layers, "student")
    if len(t_layers) != len(s_layers):
        msg = f"{len(t_layers)} teacher taps {t_layers} but {len(s_layers)} student taps {s_layers}"
        raise DistillError(f"{msg}: give teacher_layers and student_layers of equal length")
    if recipe.levels is not None and len(recipe.levels) != len(t_layers):
        raise DistillError(f"{len(recipe.levels)} levels weights for {len(t_layers)} taps: give one weight per tap")
    for t, c in zip(teachers, picks):
        _check_head_losses(recipe, t, student, lowres, c and len(c))
    if len(teachers) > 1:
        _check_ensemble(recipe, paths, teachers)
    t_info, s_info = _probe(teacher, t_layers, 2 * stride), _probe(student, s_layers, 2 * stride)
    for ti, si, (_, ts), (_, ss) in zip(t_layers, s_layers, t_info, s_info):
        if ts != ss:
            msg = f"teacher layer {ti} (stride {ts}) and student layer {si} (stride {ss}) differ in stride"
            raise DistillError(f"{msg}: tap layers of equal stride")
    return Plan(
        teacher=teacher,
        teacher_path=str(paths[0]),
        recipe=recipe,
        recipe_name=str(recipe_name),
        teacher_layers=t_layers,
        student_layers=s_layers,
        teacher_channels=[c for c, _ in t_info],
        student_channels=[c for c, _ in s_info],
        teacher_imgsz=teacher_imgsz,
        teacher_sha256=file_sha256(paths[0]),
        student_head_channels=cut_channels(student.model[-1])[0] if recipe.cross_kd > 0 else [],
        teacher_classes=classes,
        student_protos=student.model[-1].nm if recipe.proto_kd > 0 else 0,
        image_decoder=_image_decoder(student, teacher_imgsz / args.imgsz, 2 * stride) if recipe.isrd > 0 else (0, 0),
        members=teachers[1:],
        member_paths=[str(p) for p in paths[1:]],
        member_sha256=[file_sha256(p) for p in paths[1:]],
        member_classes=picks[1:],
        unlabeled=unlabeled,
        unlabeled_files=unlabeled_files,
        unlabeled_ratio=ratio,
    )


def file_sha256(path: str | Path) -> str:
    """Content hash of a file (the teacher's, kept in checkpoints so a resume can tell a different teacher)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resume_args(state: dict[str, Any], given: dict[str, Any], imgsz: int) -> dict[str, Any]:
    """yolodistill's args for resuming a run from its checkpoint's extra key `state`, given the args passed on resume.

    The run keeps its recipe and teacher: a different recipe key, teacher file content or `teacher_imgsz`, or an
    `imgsz` that would switch between normal and lower-resolution training, is refused in one line. A teacher may be
    given again at a new path (moved file) as long as its content is the same.
    """
    recipe = state_args(state)
    changed = []
    for k, v in given.items():
        if k == "teacher" or v is None:
            continue
        before = recipe.get(k)
        if k == "recipe":
            same = str(v) == str(before)
        elif k == "unlabeled":  # the same folder, given again, maybe by another relative path
            same = before is not None and Path(v).resolve() == Path(before).resolve()
        elif k == "unlabeled_ratio":
            same = before is not None and float(v) == float(before)
        else:
            same = load_recipe_value(k, v) == load_recipe_value(k, before)
        if not same:
            changed.append(f"{k}={v} (run: {before})")
    if changed:
        raise DistillError(
            f"resume keeps the run's settings, but {', '.join(changed)} differ: drop them or start a new run"
        )
    teacher = given["teacher"] or state["teacher"]
    # an ensemble's paths and hashes are lists (in the same order); one teacher's are a path and a hash
    listed = isinstance(state["teacher"], list)
    hashes = state.get("teacher_sha256") or ([None] * len(state["teacher"]) if listed else None)
    pairs = zip(teacher, hashes) if listed and isinstance(teacher, list) else [(teacher, hashes)]
    if listed != isinstance(teacher, list) or (listed and len(teacher) != len(state["teacher"])):
        raise DistillError(f"teacher={teacher} on resume, but the run's is {state['teacher']}: drop teacher=")
    for path, sha in pairs:
        if sha and Path(path).is_file() and file_sha256(path) != sha:
            raise DistillError(
                f"teacher '{path}' is not the file this run was started with (content differs): pass the original "
                "teacher or start a new run"
            )
    lowres_before = state["teacher_imgsz"] != state.get("imgsz", state["teacher_imgsz"])
    if lowres_before and imgsz != state["imgsz"]:
        raise DistillError(
            f"imgsz={imgsz} on resume of a lower-resolution run (imgsz={state['imgsz']}, teacher_imgsz="
            f"{state['teacher_imgsz']}): resume without imgsz, or start a new run"
        )
    # a normal run stays normal: the teacher follows an imgsz changed on resume (Ultralytics allows imgsz then)
    teacher_imgsz = state["teacher_imgsz"] if lowres_before else imgsz
    return {**DISTILL_ARGS, **state_args(state), "teacher": teacher, "teacher_imgsz": teacher_imgsz}


def state_args(state: dict[str, Any]) -> dict[str, Any]:
    """The train args a checkpoint's extra key was written from (`Plan.state`, read back): `Plan.args()` of its run."""
    return {"teacher": state["teacher"], "recipe": state["recipe_name"], "teacher_imgsz": state["teacher_imgsz"],
            "unlabeled": state.get("unlabeled"), "unlabeled_ratio": state.get("unlabeled_ratio"),
            **state["recipe"]}  # fmt: skip


def check_unlabeled_unchanged(state: dict[str, Any], plan: Plan) -> None:
    """On resume, the run's unlabelled images must be the ones it started with (part of its state, as its teacher)."""
    before = state.get("unlabeled_sha256")
    if before and list_sha256(plan.unlabeled_files) != before:
        raise DistillError(
            f"the images of unlabeled='{plan.unlabeled}' changed since the run started ({state['unlabeled_images']} "
            f"then, {len(plan.unlabeled_files)} now): restore them, or start a new run"
        )
