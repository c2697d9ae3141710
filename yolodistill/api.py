"""Python API for notebooks: `distill(...)` trains and returns the metrics and the path of best.pt; never exits."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from . import assistant
from .trainer import run


class DistillResult(NamedTuple):
    """Ultralytics' metrics of the final validation of best.pt, and where best.pt is."""

    metrics: Any  # DetMetrics (.box.map, .results_dict), or the task's: SegmentMetrics (.seg), PoseMetrics (.pose), OBB
    best: Path
    save_dir: Path


def distill(
    teacher: str | Path | list[str | Path],
    student: str | Path,
    data: str | Path,
    recipe: str | Path | None = None,
    unlabeled: str | Path | None = None,
    **train_args: Any,
) -> DistillResult:
    """Distil `teacher` (a detect, segment, pose or obb .pt, or a list: an ensemble) into `student` (a model yaml or
    .pt of the teacher's task) on `data`, with the trainer of that task (`trainer.TRAINERS`).

    `recipe` None takes the default for the student's start, `recipes.default_recipe`: `DEFAULT_RECIPE` for a .pt,
    `SCRATCH_RECIPE` for a yaml, `LOWRES_RECIPE` when `teacher_imgsz` > `imgsz`.
    `unlabeled`: images without labels to distil from as well (a folder, a .txt list or a glob; `unlabeled_ratio` per
    labelled image in a batch; see yolodistill.unlabeled). `train_args` are Ultralytics train arguments (epochs, imgsz,
    batch, device, ...), `teacher_imgsz`, `unlabeled_ratio`, `assistant` (Teacher–Assistant–Student:
    yolodistill.assistant) and overrides of any recipe key (the fields of `yolodistill.recipes.Recipe`). Bad input
    raises `yolodistill.DistillError` with a one-line message before anything is written.

    Example:
        >>> metrics, best, _ = distill("yolov8l.pt", "yolov8n.yaml", "my.yaml", epochs=100)
        >>> YOLO(best).predict("bus.jpg")
    """
    teacher = [str(t) for t in teacher] if isinstance(teacher, (list, tuple)) else str(teacher)
    overrides = {"teacher": teacher, "model": str(student), "data": str(data), "recipe": recipe and str(recipe),
                 "unlabeled": unlabeled and str(unlabeled)}  # fmt: skip
    args = {**overrides, **train_args}
    trainer = assistant.train(args, run) if any(k in args for k in assistant.ASSISTANT_ARGS) else run(args)
    return DistillResult(trainer.validator.metrics, trainer.best, trainer.save_dir)
