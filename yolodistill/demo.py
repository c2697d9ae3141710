"""`yolodistill demo`: on the built-in dataset, teacher vs student vs distilled student, offline on a CPU.

Trains (or reuses a cached) teacher, then the student with and without distillation for the same epochs and seed
(same start weights, same batches), prints mAP50 and mAP50-95 of all three with the distilled student's gap recovery,
and writes demo.png: mAP50-95 per epoch of both students, the teacher's level as a line. Defaults are sized for a
2-core CPU with no GPU, on the `shapes` preset of the benchmarks. The figures differ between machines and thread
counts (the floating-point results of CPU training depend on both), so it prints the thread count with them.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from ultralytics.models.yolo.detect import DetectionTrainer

from .checks import check_device
from .data import resolve_data
from .synthetic import GENERATOR_VERSION
from .trainer import DistillationTrainer
from .utils import cache_home, replacing

DEMO = dict(teacher="yolov8s.yaml", student="yolov8n.yaml", data="shapes", imgsz=128, batch=16)
DEMO.update(epochs=10, teacher_epochs=20, seed=0, device="cpu", workers=0)


def train_with_threads(trainer_cls: type, threads: int | None = None, **overrides: Any):
    """`trainer_cls(overrides=overrides).train()` with torch on `threads` CPU threads (None: every core); returns the
    trainer.

    Ultralytics trains on cpu_count - 1 threads (one core kept for data loading); the demo loads data in the main
    process, so on a 2-core machine all cores double its speed. The benchmarks run two trainings side by side with one
    thread each. Results on a CPU depend on the thread count, so every run of one comparison uses the same.
    """

    def set_threads(trainer) -> None:
        if trainer.device.type == "cpu":
            torch.set_num_threads(threads or os.cpu_count() or 1)

    trainer = trainer_cls(overrides=overrides)
    trainer.add_callback("on_train_start", set_threads)
    trainer.train()
    return trainer


def teacher_path(cfg: str, data: str, epochs: int, imgsz: int, seed: int, **train_args: Any) -> Path:
    """Where `teacher_checkpoint` caches the teacher of these settings (under $YOLODISTILL_HOME/teachers); `train_args`
    (e.g. nbs) are further training settings of Ultralytics', each part of the key."""
    key = f"{cfg}|{data}|{epochs}|{imgsz}|{seed}|{GENERATOR_VERSION}"
    # only when given: the teachers cached before these existed keep their paths (kept benchmark runs name them)
    key += "".join(f"|{k}={v}" for k, v in sorted(train_args.items()))
    return cache_home() / "teachers" / f"{Path(cfg).stem}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.pt"


def teacher_checkpoint(
    cfg: str,
    data: str,
    epochs: int,
    threads: int | None = None,
    trainer_cls: type = DetectionTrainer,
    keyed: dict[str, Any] | None = None,
    **args: Any,
) -> Path:
    """A teacher trained with plain Ultralytics (`trainer_cls`: its trainer of the model's task), cached by its settings
    (`teacher_path`, with the training settings `keyed`, which may repeat some of `args`; the model yaml names the
    task: yolov8s-seg.yaml)."""
    keyed = keyed or {}
    cached = teacher_path(cfg, data, epochs, args["imgsz"], args["seed"], **keyed)
    if not cached.exists():
        trainer = train_with_threads(
            trainer_cls, threads, model=cfg, data=data, name="teacher", epochs=epochs, **{**args, **keyed}
        )
        cached.parent.mkdir(parents=True, exist_ok=True)
        with replacing(cached) as tmp:  # never a half-copied teacher in the cache
            shutil.copyfile(trainer.best, tmp)
    return cached


def run_demo(recipe: str | None = None, project: str = "runs/demo", **overrides: Any) -> dict[str, dict[str, float]]:
    """Run the comparison and print the table; returns {row: {"mAP50": .., "mAP50-95": ..}}. `recipe` None: the default
    of the demo's student (`recipes.default_recipe`: from scratch)."""
    from ultralytics import YOLO

    cfg = {**DEMO, **overrides}
    check_device(cfg["device"])  # the plain Ultralytics trainings come first: one line, before any data is made
    teacher_cfg, student_cfg, teacher_epochs = cfg.pop("teacher"), cfg.pop("student"), cfg.pop("teacher_epochs")
    data = resolve_data(cfg.pop("data"))
    common = {**cfg, "project": str(Path(project).resolve()), "exist_ok": True, "plots": False}
    teacher_args = {k: v for k, v in common.items() if k != "epochs"}
    threads = os.cpu_count() or 1  # every core, for all three trainings
    teacher = teacher_checkpoint(teacher_cfg, data, teacher_epochs, threads, **teacher_args)
    student = train_with_threads(DetectionTrainer, threads, model=student_cfg, data=data, name="student", **common)
    distilled = train_with_threads(
        DistillationTrainer,
        threads,
        teacher=str(teacher),
        model=student_cfg,
        data=data,
        recipe=recipe,
        name="distilled",
        **common,
    )
    recipe = distilled.distill_args["recipe"]  # the one the trainer picked where None
    t_metrics = YOLO(teacher).val(data=data, imgsz=cfg["imgsz"], batch=cfg["batch"], device=cfg["device"], plots=False)
    rows = {
        f"teacher ({Path(teacher_cfg).stem}, {teacher_epochs} ep)": t_metrics.box,
        f"student ({Path(student_cfg).stem}, {cfg['epochs']} ep)": student.validator.metrics.box,
        f"distilled ({recipe}, {cfg['epochs']} ep)": distilled.validator.metrics.box,
    }
    table = {k: {"mAP50": float(b.map50), "mAP50-95": float(b.map)} for k, b in rows.items()}
    t, s, d = (v["mAP50-95"] for v in table.values())
    print(f"\n{'':34}{'mAP50':>8}{'mAP50-95':>10}")
    for k, v in table.items():
        print(f"{k:34}{v['mAP50']:8.3f}{v['mAP50-95']:10.3f}")
    gap = f"{(d - s) / (t - s):.2f}" if t != s else "n/a (teacher and student level)"
    print(f"\ngap recovery (distilled − student) / (teacher − student) on mAP50-95: {gap}")
    on = f"a CPU, torch on {threads} threads" if distilled.device.type == "cpu" else f"device={cfg['device']}"
    print(f"Trained on {on}: these figures and the time taken vary by machine and thread count")
    plot = plot_curves(student.csv, distilled.csv, t, Path(common["project"]) / "demo.png", recipe)
    print(f"Runs in {common['project']}; distilled student: {distilled.best}; curves: {plot}")
    return table


def plot_curves(student_csv: Path, distilled_csv: Path, teacher_map: float, path: Path, recipe: str) -> Path:
    """mAP50-95 per epoch of both students (from Ultralytics' results.csv), the teacher's level as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), tight_layout=True)
    for label, path_csv in (("student", student_csv), (f"distilled ({recipe})", distilled_csv)):
        with open(path_csv) as f:
            rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(f)]
        epochs = [int(float(r["epoch"])) for r in rows]
        ax.plot(epochs, [float(r["metrics/mAP50-95(B)"]) for r in rows], marker="o", label=label)
    ax.axhline(teacher_map, ls="--", c="k", label=f"teacher {teacher_map:.3f}")
    ax.set(xlabel="epoch", ylabel="mAP50-95 (val)", title="yolodistill demo")
    ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
