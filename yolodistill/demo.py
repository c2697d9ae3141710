"""`yolodistill demo`: on the built-in dataset, teacher vs student vs distilled student, offline on a CPU.

Trains (or reuses a cached) teacher, then the student with and without distillation for the same epochs, and prints
mAP50 and mAP50-95 of all three. Defaults are sized for a 2-core CPU with no GPU (see README for the measured time).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from ultralytics.models.yolo.detect import DetectionTrainer

from .data import resolve_data
from .recipes import DEFAULT_RECIPE
from .synthetic import GENERATOR_VERSION
from .trainer import DistillationTrainer
from .utils import cache_home

DEMO = dict(teacher="yolov8s.yaml", student="yolov8n.yaml", data="synthetic", imgsz=128, batch=16)
DEMO.update(epochs=10, teacher_epochs=10, seed=0, device="cpu", workers=0)


def _use_all_cores(trainer) -> None:
    # Ultralytics trains on cpu_count - 1 threads (one core kept for data loading); the demo loads data in the main
    # process, so on a 2-core machine this doubles its speed. Applied to every run of the demo alike.
    if trainer.device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)


def train_on_all_cores(trainer_cls: type, **overrides: Any):
    """`trainer_cls(overrides=overrides).train()` with torch on every CPU core; returns the trainer."""
    trainer = trainer_cls(overrides=overrides)
    trainer.add_callback("on_train_start", _use_all_cores)
    trainer.train()
    return trainer


def teacher_checkpoint(cfg: str, data: str, epochs: int, **args: Any) -> Path:
    """A teacher trained with plain Ultralytics, cached by its settings under $YOLODISTILL_HOME/teachers."""
    key = f"{cfg}|{data}|{epochs}|{args['imgsz']}|{args['seed']}|{GENERATOR_VERSION}"
    cached = cache_home() / "teachers" / f"{Path(cfg).stem}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.pt"
    if not cached.exists():
        trainer = train_on_all_cores(DetectionTrainer, model=cfg, data=data, name="teacher", epochs=epochs, **args)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        shutil.copyfile(trainer.best, tmp)
        os.replace(tmp, cached)  # never a half-copied teacher in the cache
    return cached


def run_demo(recipe: str = DEFAULT_RECIPE, project: str = "runs/demo", **overrides: Any) -> dict[str, dict[str, float]]:
    """Run the comparison and print the table; returns {row: {"mAP50": .., "mAP50-95": ..}}."""
    from ultralytics import YOLO

    cfg = {**DEMO, **overrides}
    teacher_cfg, student_cfg, teacher_epochs = cfg.pop("teacher"), cfg.pop("student"), cfg.pop("teacher_epochs")
    data = resolve_data(cfg.pop("data"))
    common = {**cfg, "project": str(Path(project).resolve()), "exist_ok": True, "plots": False}
    teacher_args = {k: v for k, v in common.items() if k != "epochs"}
    teacher = teacher_checkpoint(teacher_cfg, data, teacher_epochs, **teacher_args)
    student = train_on_all_cores(DetectionTrainer, model=student_cfg, data=data, name="student", **common)
    distilled = train_on_all_cores(
        DistillationTrainer,
        teacher=str(teacher),
        model=student_cfg,
        data=data,
        recipe=recipe,
        name="distilled",
        **common,
    )
    t_metrics = YOLO(teacher).val(data=data, imgsz=cfg["imgsz"], batch=cfg["batch"], device=cfg["device"], plots=False)
    rows = {
        f"teacher ({Path(teacher_cfg).stem}, {teacher_epochs} ep)": t_metrics.box,
        f"student ({Path(student_cfg).stem}, {cfg['epochs']} ep)": student.validator.metrics.box,
        f"distilled ({recipe}, {cfg['epochs']} ep)": distilled.validator.metrics.box,
    }
    table = {k: {"mAP50": float(b.map50), "mAP50-95": float(b.map)} for k, b in rows.items()}
    print(f"\n{'':34}{'mAP50':>8}{'mAP50-95':>10}")
    for k, v in table.items():
        print(f"{k:34}{v['mAP50']:8.3f}{v['mAP50-95']:10.3f}")
    print(f"\nRuns in {common['project']}; distilled student: {distilled.best}")
    return table
