"""DistillationTrainer: Ultralytics' DetectionTrainer plus an offline teacher, through a handful of small overrides;
the same overrides on Ultralytics' SegmentationTrainer, PoseTrainer and OBBTrainer for students of those tasks.

Ultralytics runs the loop (data, loss, optimizer, EMA, validation, checkpoints, callbacks, logging). We only:
  - check the input and load the teacher before the run directory exists      (check_resume)
  - build the train set at the teacher's resolution, derive the student's input (build_dataset, preprocess_batch)
  - append unlabelled images to every labelled batch (get_dataloader, _close_dataloader_mosaic; unlabeled.py)
  - train the adapters in the student's optimizer                              (build_optimizer)
  - hook the student and wrap its criterion once the EMA copy exists            (_setup_train)
  - keep adapters, recipe and teacher path in an extra checkpoint key          (save_model, _load_checkpoint_state)
  - write every checkpoint file atomically                                     (save_model, final_eval)
  - on resume, keep results.csv to the epochs the checkpoint holds             (resume_training)
Where one of them points an attribute Ultralytics reads elsewhere for a call, seams.py lists it with the Ultralytics
behaviour it relies on.
"""

from __future__ import annotations

import io
import itertools
import shutil
from copy import copy
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
import ultralytics.data.build
from torch import nn
from ultralytics.cfg import cfg2dict
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.models.yolo.obb import OBBTrainer
from ultralytics.models.yolo.pose import PoseTrainer
from ultralytics.models.yolo.segment import SegmentationTrainer
from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK, YAML, colorstr
from ultralytics.utils.files import get_latest_run
from ultralytics.utils.patches import override_configs, torch_load
from ultralytics.utils.torch_utils import unwrap_model

from .alignment import student_size
from .checks import DISTILL_ARGS, check_args, check_device, check_unlabeled_unchanged, merge_cfg, preflight, resume_args
from .data import resolve_data
from .distiller import Distiller
from .recipes import DEFAULT_FOR
from .seams import swapped
from .teacher import teacher_task
from .unlabeled import MixedLoader, UnlabeledDataset, unlabeled_batch
from .utils import DistillError, replace_atomic, write_atomic

# the events at which Ultralytics' integrations log trainer.args
TRACKED_EVENTS = ("on_pretrain_routine_start", "on_pretrain_routine_end", "on_train_start")
CKPT_KEY = "distill"  # extra checkpoint key: adapters, recipe, teacher path (plain types and tensors only)


class _StudentAndAdapters(nn.Module):
    """What the optimizer sees. Ultralytics builds parameter groups by walking modules and finds the head through
    `student_model` (as for its own DistillationModel), so adapters get the student's lr schedule, decay and warm-up."""

    def __init__(self, student: nn.Module, adapters: nn.Module):
        super().__init__()
        self.student_model = student
        self.adapters = adapters


class _StepWithTeacher(nn.Module):
    """What auto-batch profiles: the teachers' no-grad forwards (at teacher_imgsz), then the student's forward, with the
    teachers' outputs held meanwhile."""

    def __init__(self, student: nn.Module, teachers: list[nn.Module], scale: float):
        super().__init__()
        # a ModuleList, as the one teacher was a submodule: the profiled step's parameters include the teachers'
        self.student, self.teachers, self.scale = student, nn.ModuleList(teachers), scale
        self.yaml, self.stride = student.yaml, student.stride  # what Ultralytics reads of the model meanwhile

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        with torch.no_grad():
            big = x if self.scale == 1 else F.interpolate(x, scale_factor=self.scale)
            held = [t(big) for t in self.teachers]
        return {"student": self.student(x), "teachers": held}


def broadcast_from_rank0(params: list[nn.Parameter]) -> None:
    """Copy rank 0's values of `params` to every DDP rank (what DDP does for the student when it wraps it)."""
    for p in params:
        dist.broadcast(p.data, src=0)


def average_gradients(params: list[nn.Parameter]) -> None:
    """All-reduce the gradients of `params` to their mean over the DDP ranks (what DDP does for the student)."""
    grads = [p.grad for p in params if p.grad is not None]
    world = dist.get_world_size()
    for g in grads:
        dist.all_reduce(g)
        g.div_(world)


def _drop_rows_after(path: Path, epoch: int) -> list[int]:
    """Rewrite Ultralytics' results.csv, atomically, without the rows of the epochs after `epoch` (its first column,
    `epoch`, counts from 1); return the epochs dropped."""
    header, *rows = path.read_text(encoding="utf-8").splitlines(keepends=True)
    numbers = [int(float(row.split(",", 1)[0])) for row in rows]
    dropped = [n for n in numbers if n > epoch]
    if dropped:
        kept = [row for row, n in zip(rows, numbers) if n <= epoch]
        write_atomic(path, "".join([header, *kept]).encode("utf-8"))
    return dropped


def _apply_schedule(trainer: DistillationMixin) -> None:
    """The recipe's weight schedule for the epoch about to start."""
    trainer.distiller.factor = trainer.plan.recipe.factor(trainer.epoch, trainer.epochs, trainer.args.close_mosaic)


def _set_unlabeled_epoch(trainer: DistillationMixin) -> None:
    """Under DDP, the unlabelled loader's sampler shuffles by epoch too (Ultralytics sets the labelled one's)."""
    loader = trainer.train_loader
    if isinstance(loader, MixedLoader) and hasattr(loader.unlabelled.sampler, "set_epoch"):
        loader.unlabelled.sampler.set_epoch(trainer.epoch)


def _report_dropped_steps(trainer: DistillationMixin) -> None:
    """Once an epoch (one host sync): how many steps had their distillation dropped for a non-finite teacher output."""
    dropped = int(trainer.distiller.dropped_steps)
    if dropped:
        LOGGER.warning(
            f"{colorstr('distill:')} epoch {trainer.epoch + 1}: distillation dropped in {dropped} step(s) where the "
            "teacher's outputs were not finite (the detection loss trained as usual)"
        )
        trainer.distiller.dropped_steps.zero_()


class DistillationMixin:
    """yolodistill's behaviour on top of an Ultralytics task trainer: `class X(DistillationMixin, TaskTrainer)`.

    One mixin applied to Ultralytics' four task trainers (each trainer class below is a one-line pairing) rather than
    a subclass per task with its own overrides: every override here (preflight, teacher-size data, unlabelled images,
    adapters in the optimizer, the wrapped criterion, atomic checkpoints, resume, DDP arguments, tracking) is the same
    for every task, because Ultralytics' SegmentationTrainer, PoseTrainer and OBBTrainer differ from its
    DetectionTrainer only in their model, validator, dataset task and plots, none of which yolodistill touches.
    Placed before the task trainer in the bases, the mixin's methods run first and reach the task trainer's through
    super(), so each task keeps its own model, loss, validator and plots, and a plain student of that task is what
    gets saved. `TASK` is the task the trainer trains (Ultralytics' `args.task`); the teacher's must be the same
    (checks.preflight).

    Takes every Ultralytics train argument plus `teacher`, `recipe`, `teacher_imgsz` and the keys of
    `yolodistill.recipes.Recipe` (`yolodistill help` lists them).
    """

    TASK = "detect"

    def __init__(self, cfg=DEFAULT_CFG, overrides: dict[str, Any] | None = None, _callbacks: dict | None = None):
        overrides = merge_cfg(overrides or {})
        check_args(overrides, cfg2dict(cfg))
        if overrides.get("task", self.TASK) != self.TASK:  # the task trainers would overwrite it silently
            raise DistillError(
                f"task={overrides['task']} was given, but {type(self).__name__} trains {self.TASK} models (the "
                "teacher's task): drop task="
            )
        # Our args stay out of Ultralytics' namespace: validators, exporters and checkpoint loaders re-check it
        # against their own keys. They are kept in the checkpoint's extra key instead.
        self.distill_args = {**DISTILL_ARGS, **{k: overrides.pop(k) for k in list(overrides) if k in DISTILL_ARGS}}
        if overrides.get("compile"):  # before Ultralytics writes args.yaml, so the file says what ran
            LOGGER.warning("'compile' is not supported with distillation (forward hooks) and will be disabled.")
            overrides["compile"] = False
        super().__init__(cfg, overrides, _callbacks)
        # Ultralytics has just seeded the global RNG; the adapters are initialised off it, so that a run with a given
        # seed starts from the same student weights and sees the same batches as `yolo train` with that seed.
        with torch.random.fork_rng(devices=[]):
            self.distiller = Distiller.from_plan(self.plan).to(self.device)
        self.add_callback("on_train_epoch_start", _apply_schedule)
        self.add_callback("on_train_epoch_start", _set_unlabeled_epoch)
        self.add_callback("on_train_epoch_end", _report_dropped_steps)
        if RANK in {-1, 0}:
            YAML.save(self.save_dir / "distill.yaml", self.distill_state(adapters=False))

    def check_resume(self, overrides: dict[str, Any]) -> None:
        """Ultralytics calls this right after parsing the args and before creating the run directory, so bad input
        fails here without leaving a run behind. On resume, our args come back from the checkpoint's extra key."""
        try:
            super().check_resume(overrides)
        except FileNotFoundError as e:  # Ultralytics says "not found" for any checkpoint it cannot load
            resume = self.args.resume
            if isinstance(resume, (str, Path)) and Path(resume).is_file():
                raise DistillError(
                    f"checkpoint '{resume}' is truncated or unreadable: resume from best.pt or an epochN.pt beside it, "
                    "or start the run over"
                ) from e
            raise DistillError(f"resume checkpoint '{resume}' not found: pass resume=path/to/last.pt") from e
        check_device(self.args.device)  # after the resume overrides, which may change the device
        if self.args.task != self.TASK:  # a checkpoint's own args name its task
            raise DistillError(
                f"'{self.args.model}' is from a {self.args.task} run, but {type(self).__name__} trains {self.TASK} "
                "models: resume it with yolodistill train resume=..., which picks the trainer of its task"
            )
        state = None
        if self.resume:
            ckpt = torch_load(self.args.model, map_location="cpu")
            state = ckpt.get(CKPT_KEY)
            if not state:
                raise DistillError(f"'{self.args.model}' was not written by yolodistill: resume it with 'yolo train'")
            self._check_unfinished(ckpt)
            self.distill_args = resume_args(state, self.distill_args, self.args.imgsz)
        self.args.data = resolve_data(self.args.data) if self.args.data else self.args.data
        picked = not self.distill_args["recipe"]  # no recipe given: preflight picks the default of the student's start
        self.plan = preflight(self.args, self.distill_args)
        if state:
            check_unlabeled_unchanged(state, self.plan)
        self.distill_args["recipe"] = self.plan.recipe_name
        r = self.plan.recipe
        why = f" (the default for {DEFAULT_FOR[self.plan.recipe_name]})" if picked else ""
        LOGGER.info(
            f"{colorstr('distill:')} teacher={self.distill_args['teacher']} recipe={self.plan.recipe_name}{why} "
            f"losses={r.weights()} taps teacher{self.plan.teacher_layers}→student{self.plan.student_layers} "
            f"adapter={r.adapter} imgsz={self.args.imgsz} teacher_imgsz={self.plan.teacher_imgsz}"
        )
        if self.plan.members:
            LOGGER.info(
                f"{colorstr('distill:')} an ensemble of {1 + len(self.plan.members)} teachers: their class scores and "
                "box distributions averaged (ensemble.py)"
            )
        if self.plan.unlabeled:
            LOGGER.info(
                f"{colorstr('distill:')} unlabeled: found {len(self.plan.unlabeled_files)} images in "
                f"{self.plan.unlabeled} (unlabeled_ratio={self.plan.unlabeled_ratio:g})"
            )
        if self.plan.teacher_classes is not None:
            LOGGER.info(
                f"{colorstr('distill:')} the teacher's {len(self.plan.teacher.names)} classes include the data's "
                f"{len(self.plan.teacher_classes)}: distilling its channels {self.plan.teacher_classes} (by name)"
            )

    def _check_unfinished(self, ckpt: dict[str, Any]) -> None:
        """Ultralytics refuses to resume a run that trained all its epochs with an AssertionError in resume_training,
        after the run directory is written to; the same test (its `0 < start_epoch < epochs`) runs here, up front.
        Its resume keeps the checkpoint's `epochs`, so the way to train further is a new run from the weights."""
        start_epoch = ckpt.get("epoch", -1) + 1  # the final strip sets epoch -1
        if 0 < start_epoch < self.args.epochs:
            return
        best = Path(self.args.model).with_name("best.pt")
        teacher = ckpt[CKPT_KEY]["teacher"]
        teacher = f"[{','.join(teacher)}]" if isinstance(teacher, list) else teacher  # as the CLI takes a list
        raise DistillError(
            f"'{self.args.model}' is from a finished run (all epochs={self.args.epochs} trained; resume cannot add "
            f"epochs), nothing to resume: to train further, start a new run from its weights, e.g. yolodistill train "
            f"student={best} teacher={teacher} data={self.args.data} epochs=N"
        )

    def run_callbacks(self, event: str) -> None:
        """While the run starts, `trainer.args` also carries the distillation settings (`yolodistill_*` keys):
        Ultralytics' integrations (MLflow, W&B, Comet, ClearML, TensorBoard, DVC) log `trainer.args` then. They live
        outside it otherwise, because validators and exporters re-check args against Ultralytics' own keys."""
        if event not in TRACKED_EVENTS:
            return super().run_callbacks(event)
        with swapped(self.args, **{f"yolodistill_{k}": v for k, v in self.tracked_settings().items()}):
            super().run_callbacks(event)

    def tracked_settings(self) -> dict[str, Any]:
        """What experiment trackers should record of the distillation: teacher path and hash, recipe, its values."""
        return {k: str(v) if isinstance(v, list) else v for k, v in self.plan.settings().items()}

    @property
    def lowres(self) -> bool:
        """True when the student sees smaller images than the teacher."""
        return self.plan.teacher_imgsz != self.args.imgsz

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None):
        """Training images are loaded and augmented at the teacher's size; validation stays at the student's."""
        if mode == "train" and self.lowres:
            with override_configs(self.args, {"imgsz": self.plan.teacher_imgsz}):
                return super().build_dataset(img_path, mode, batch)
        return super().build_dataset(img_path, mode, batch)

    def get_dataloader(self, dataset_path: str, batch_size: int = 16, rank: int = 0, mode: str = "train"):
        """With unlabelled images, the train loader is Ultralytics' own with a second one of its loaders, over
        `UnlabeledDataset`, appended batch by batch (`unlabeled.MixedLoader`; how they mix: unlabeled.py)."""
        loader = super().get_dataloader(dataset_path, batch_size, rank, mode)
        if mode != "train" or not self.plan.unlabeled_files:
            return loader
        k = unlabeled_batch(batch_size, self.plan.unlabeled_ratio)
        # Ultralytics' build_yolo_dataset names its dataset class with no way to pass another, and cuts a train set to
        # `fraction` (meant for the labelled set): both are set aside for this one build (seams.py)
        with (
            swapped(ultralytics.data.build, YOLODataset=UnlabeledDataset),
            override_configs(self.args, {"fraction": 1.0}),
        ):
            extra = super().get_dataloader(self.plan.unlabeled_files, k, rank, mode)
        if RANK in {-1, 0}:
            n, found = len(loader), len(self.plan.unlabeled_files)
            LOGGER.info(
                f"{colorstr('distill:')} unlabeled: each batch of {batch_size} labelled images gets {k} unlabelled "
                f"ones: an epoch uses {n * k * max(self.world_size, 1)} unlabelled images ({n} steps; {found} found)"
            )
        return MixedLoader(loader, extra)

    def _close_dataloader_mosaic(self) -> None:
        """Ultralytics closes mosaic on the train loader's dataset; the unlabelled images' dataset closes it too (both
        loaders are then reset by the MixedLoader)."""
        super()._close_dataloader_mosaic()
        if isinstance(self.train_loader, MixedLoader):
            self.train_loader.unlabelled.dataset.close_mosaic(hyp=copy(self.args))

    def preprocess_batch(self, batch: dict) -> dict:
        """For a lower-resolution student, `img` becomes the antialiased downscale of the teacher-size batch (same
        augmented content, labels are normalised so they stay valid) and `teacher_img` keeps the original."""
        batch = super().preprocess_batch(batch)
        if self.lowres:
            batch["teacher_img"] = batch["img"]
            # an explicit size: a scale factor's rounding gives sides off the stride (rect batches) or 1 px short
            size = student_size(batch["img"].shape[-2:], self.args.imgsz / self.plan.teacher_imgsz, self.stride)
            batch["img"] = F.interpolate(batch["img"], size=size, mode="bilinear", antialias=True)
        return batch

    def auto_batch(self) -> int:
        """Ultralytics profiles a training step of `self.model` at a few batch sizes (CUDA only); the profiled step
        here also runs the teacher, at its own size, keeping its outputs alive through the student's step as a real
        step does, so the chosen batch leaves room for it."""
        teachers = [self.distiller.teacher, *self.distiller.members]
        step = _StepWithTeacher(self.model, teachers, self.plan.teacher_imgsz / self.args.imgsz)
        with swapped(self, model=step):
            batch = super().auto_batch()
        if self.plan.unlabeled_files:  # a step holds batch + unlabeled_batch(batch) images: leave room for them
            batch = max(1, int(batch / (1 + self.plan.unlabeled_ratio)))
        LOGGER.info(f"{colorstr('distill:')} auto-batch chose batch={batch}, profiling student and teacher together")
        return batch

    def optimizer_step(self) -> None:
        """Ultralytics clips the gradient norm of `self.model.parameters()` (max 10) inside its optimizer step; while
        that step runs, the call also yields the adapters, so they are clipped together with the student."""
        adapters = list(self.distiller.adapters.parameters())
        if not adapters:
            return super().optimizer_step()
        if self.world_size > 1:  # outside the DDP-wrapped student: average their gradients across ranks here
            average_gradients(adapters)
        plain = self.model.parameters
        with swapped(self.model, parameters=lambda recurse=True: itertools.chain(plain(recurse), adapters)):
            super().optimizer_step()

    def build_optimizer(self, model: nn.Module, *args, **kwargs) -> torch.optim.Optimizer:
        """The student's optimizer, with the adapters in the same parameter groups."""
        return super().build_optimizer(_StudentAndAdapters(model, self.distiller.adapters), *args, **kwargs)

    def _setup_train(self) -> None:
        """After Ultralytics' setup, so the hooks and the wrapped criterion never reach the EMA copy it validates and
        saves (the EMA is a deepcopy of the model made inside setup)."""
        super()._setup_train()
        self.distiller.attach(unwrap_model(self.model))  # DDP wraps the student: hook the module inside
        if self.world_size > 1:  # ranks are seeded seed + 1 + RANK: start every rank from rank 0's adapters
            broadcast_from_rank0(list(self.distiller.adapters.parameters()))

    def train(self) -> None:
        """Train, then take the hooks off the student whatever happened. With several GPUs Ultralytics starts one
        worker per GPU, each rebuilding the trainer from `trainer.args`, which then carries the distillation args."""
        try:
            if self.ddp:
                with swapped(self.args, **self.worker_args()):
                    super().train()
            else:
                super().train()
        finally:
            self.distiller.detach()

    def worker_args(self) -> dict[str, Any]:
        """yolodistill's args as a DDP worker (or any rebuilt trainer) needs them: resolved recipe and sizes."""
        return self.plan.args()

    def label_loss_items(self, loss_items: dict | None = None, prefix: str = "train"):
        """Validation has no distillation columns: the teacher never runs on validation images."""
        labelled = super().label_loss_items(loss_items, prefix)
        if prefix != "val":
            return labelled
        distill = tuple(f"/{name}_loss" for name in self.distiller.weights)
        if loss_items is None:
            return [k for k in labelled if not k.endswith(distill)]
        return {k: v for k, v in labelled.items() if not k.endswith(distill)}

    def distill_state(self, adapters: bool = True) -> dict[str, Any]:
        """The extra checkpoint key (also run_dir/distill.yaml without the adapters): enough to resume exactly, with
        plain types and tensors only, so checkpoints load without yolodistill."""
        state = self.plan.state(self.args.imgsz)
        if adapters:
            state["adapters"] = {k: v.detach().cpu() for k, v in self.distiller.adapters.state_dict().items()}
            state["balance"] = self.distiller.balance.state()
        return state

    def save_model(self) -> bool:
        """Ultralytics assembles the checkpoint inside save_model, with no extension point, and writes its files in
        place. Here it writes them into a staging folder instead; the checkpoint is read back once, given the extra
        key, and each file is moved into place with os.replace, so a kill at any moment leaves either the old file or
        the new one, never a truncated one."""
        staging = self.wdir / ".staging"
        with swapped(self, wdir=staging, last=staging / self.last.name, best=staging / self.best.name):
            saved = super().save_model()
        if not saved:
            return False
        ckpt = torch_load(io.BytesIO((staging / self.last.name).read_bytes()), map_location="cpu")
        ckpt[CKPT_KEY] = self.distill_state()
        buffer = io.BytesIO()
        torch.save(ckpt, buffer)
        targets = [self.last]
        if self.best_fitness == self.fitness:
            targets.append(self.best)
        if self.save_period > 0 and self.epoch % self.save_period == 0:
            targets.append(self.wdir / f"epoch{self.epoch}.pt")
        for path in targets:
            write_atomic(path, buffer.getvalue())
        shutil.rmtree(staging, ignore_errors=True)
        return True

    def final_eval(self):
        """Ultralytics' final_eval strips the optimizer from last.pt and best.pt by rewriting them in place
        (strip_optimizer), with no extension point; a kill then would leave a truncated file. Here it strips copies
        in the staging folder (its log names them), which then replace the files atomically."""
        if RANK not in {-1, 0}:  # Ultralytics strips on rank 0 only; the other ranks validate best.pt as it is
            return super().final_eval()
        staging = self.wdir / ".staging"
        staging.mkdir(exist_ok=True)
        for path in (self.last, self.best):
            if path.exists():
                shutil.copyfile(path, staging / path.name)
        try:
            with swapped(self, last=staging / self.last.name, best=staging / self.best.name):
                result = super().final_eval()
            for path in (self.last, self.best):  # only after a whole strip: a failed one leaves the files as they were
                if (staging / path.name).exists():
                    replace_atomic(staging / path.name, path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return result

    def resume_training(self, ckpt: dict | None) -> None:
        """Ultralytics appends an epoch's row to results.csv before it writes that epoch's checkpoint, and the resumed
        run appends from the checkpoint's epoch on: a run killed between the two would list that epoch twice. Rows of
        epochs after the checkpoint's are dropped here, so results.csv, and the results.png drawn from it, have one
        row per epoch."""
        super().resume_training(ckpt)
        if self.resume and RANK in {-1, 0} and self.csv.is_file():
            dropped = _drop_rows_after(self.csv, self.start_epoch)  # start_epoch: how many epochs the checkpoint holds
            if dropped:
                LOGGER.info(
                    f"{colorstr('distill:')} {self.csv.name}: dropped the row(s) of epoch {dropped}, which "
                    f"{Path(self.args.model).name} does not hold: they are trained again"
                )

    def _load_checkpoint_state(self, ckpt: dict) -> None:
        """Restore the adapters with the optimizer (resume and NaN recovery). Ultralytics rebuilds the EMA from the
        live model here, so the student is detached meanwhile to keep hooks and criterion out of that copy."""
        attached = self.distiller.student_taps is not None
        self.distiller.detach()
        super()._load_checkpoint_state(ckpt)
        if ckpt.get(CKPT_KEY):
            self.distiller.adapters.load_state_dict(ckpt[CKPT_KEY]["adapters"])
            if "balance" in ckpt[CKPT_KEY]:  # absent in checkpoints of yolodistill before balance
                self.distiller.balance.restore(ckpt[CKPT_KEY]["balance"])
        if attached:
            self.distiller.attach(unwrap_model(self.model))


class DistillationTrainer(DistillationMixin, DetectionTrainer):
    """Train a YOLO detection student with distillation from a frozen detection teacher checkpoint.

    Example:
        >>> trainer = DistillationTrainer(overrides=dict(teacher="yolov8l.pt", model="yolov8n.yaml", data="my.yaml"))
        >>> trainer.train()
    """

    TASK = "detect"


class SegmentDistillationTrainer(DistillationMixin, SegmentationTrainer):
    """Train a YOLO segmentation student (`yolov8n-seg.yaml`) with distillation from a frozen segmentation teacher."""

    TASK = "segment"


class PoseDistillationTrainer(DistillationMixin, PoseTrainer):
    """Train a YOLO pose student (`yolov8n-pose.yaml`) with distillation from a frozen pose teacher."""

    TASK = "pose"


class OBBDistillationTrainer(DistillationMixin, OBBTrainer):
    """Train a YOLO oriented-box student (`yolov8n-obb.yaml`) with distillation from a frozen OBB teacher."""

    TASK = "obb"


TRAINERS: dict[str, type[DistillationMixin]] = {
    t.TASK: t
    for t in (DistillationTrainer, SegmentDistillationTrainer, PoseDistillationTrainer, OBBDistillationTrainer)
}


def trainer_class(overrides: dict[str, Any]) -> type[DistillationMixin]:
    """The trainer of the run's task, which is the teacher's (an ensemble's first): read from `teacher`, or on resume
    from the checkpoint being resumed (its `train_args`). Where neither can be read, DistillationTrainer, whose checks
    then say why in one line. (The teacher is loaded once more by preflight: picking the class must come before the
    trainer exists.)"""
    overrides = merge_cfg(overrides)
    check_args(overrides)  # a misspelled argument is named before the teacher is read, as the trainer does
    resume = overrides.get("resume")
    if resume:
        last = resume if isinstance(resume, (str, Path)) and Path(resume).is_file() else get_latest_run()
        try:
            task = torch_load(last, map_location="cpu")["train_args"]["task"]
        except Exception:  # not a checkpoint: check_resume says so in one line
            return DistillationTrainer
        return TRAINERS.get(task, DistillationTrainer)
    teacher = overrides.get("teacher")
    if not teacher:
        return DistillationTrainer
    first = teacher[0] if isinstance(teacher, (list, tuple)) else teacher  # an ensemble: preflight checks the others
    return TRAINERS.get(teacher_task(first), DistillationTrainer)


def run(args: dict[str, Any]) -> DistillationMixin:
    """Train one run with `args` (its overrides), with the trainer of the teacher's task, and return the trainer."""
    trainer = trainer_class(args)(overrides=args)
    trainer.train()
    return trainer
