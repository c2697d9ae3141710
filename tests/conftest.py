"""Shared fixtures: a tiny generated dataset, random-init teachers saved as Ultralytics checkpoints, one short run.

Everything is made here, offline: no weights or datasets are downloaded.
"""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_OFFLINE", "1")  # before ultralytics is imported: never reach the network

from pathlib import Path

import pytest
import torch
from ultralytics.nn.tasks import guess_model_task

from yolodistill.checks import MODELS
from yolodistill.synthetic import CLASS_NAMES, GENTLE, KPT_SHAPE, generate

IMGSZ = 64  # small enough for CPU tests, a multiple of the largest stride


def save_checkpoint(model: torch.nn.Module, path: Path, **train_args) -> Path:
    """Save `model` the way Ultralytics' trainer does (EMA under 'ema', args under 'train_args')."""
    torch.save({"model": None, "ema": model.half(), "train_args": {"imgsz": IMGSZ, **train_args}}, path)
    return path


def make_teacher(path: Path, cfg: str = "yolov8s.yaml", names=CLASS_NAMES, seed: int = 0, kpt_shape=None) -> Path:
    """A checkpoint at random initialisation (accuracy is not the point of the tests that use it), of the task of
    `cfg` (yolov8s-seg.yaml: a segmentation model; a pose model with `kpt_shape`)."""
    torch.manual_seed(seed)
    task = guess_model_task(cfg)
    kpts = {"data_kpt_shape": tuple(kpt_shape)} if task == "pose" else {}
    model = MODELS[task](cfg, nc=len(names), verbose=False, **kpts)
    model.names = dict(enumerate(names))
    return save_checkpoint(model, path, task=task)


def calibrated(model: torch.nn.Module, imgsz: int = IMGSZ) -> torch.nn.Module:
    """`model` with BatchNorm statistics of one random batch. At random initialisation a deep model's maps are
    constant to about 1e-7 on any image (BatchNorm's initial statistics are no image's), so that its outputs, and any
    loss between two such models, do not depend on the input: tests that need a teacher whose outputs vary use this."""
    model.train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 1.0
    with torch.no_grad():
        model(torch.rand(4, 3, imgsz, imgsz))
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    return model.eval()


def distil_step(distiller, student, x: torch.Tensor, backward: bool = True):
    """One distillation forward (and backward) of `student` on `x` through `distiller`, attached only meanwhile."""
    distiller.attach(student)
    try:
        terms, items = distiller(x, student.predict(x))
        if backward:
            terms.sum().backward()
    finally:
        distiller.detach()
    return terms, items


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("yolodistill")


@pytest.fixture(scope="session")
def data_yaml(workdir) -> Path:
    return generate(workdir / "data", seed=0, n_train=16, n_val=8, imgsz=IMGSZ)


@pytest.fixture(scope="session")
def teacher_pt(workdir) -> Path:
    return make_teacher(workdir / "teacher_v8s.pt")


@pytest.fixture(scope="session")
def task_data(workdir) -> dict[str, Path]:
    """Per task, the data.yaml of a tiny generated dataset with that task's labels (the classes of GENTLE)."""
    return {
        t: generate(workdir / f"data-{t}", seed=0, n_train=16, n_val=8, imgsz=IMGSZ, style=GENTLE, task=t)
        for t in ("detect", "segment", "pose", "obb")
    }


@pytest.fixture(scope="session")
def task_teachers(workdir) -> dict[str, Path]:
    """Per task but detect, a random-init YOLOv8s teacher of that task (pose: the generated data's keypoints)."""
    suffixes = {"segment": "-seg", "pose": "-pose", "obb": "-obb"}
    return {
        t: make_teacher(workdir / f"teacher-{t}.pt", f"yolov8s{suffix}.yaml", GENTLE.classes, kpt_shape=KPT_SHAPE)
        for t, suffix in suffixes.items()
    }


def train_args(project: Path, **kw) -> dict:
    """Fast CPU settings for a test run."""
    args = dict(epochs=1, imgsz=IMGSZ, batch=8, device="cpu", workers=0, project=str(project), plots=False)
    args.update(exist_ok=True, seed=0, deterministic=False, warmup_epochs=0, val=True, verbose=False)
    return {**args, **kw}


@pytest.fixture(scope="session")
def distilled_run(workdir, data_yaml, teacher_pt) -> Path:
    """Run directory of one 1-epoch `yolodistill train` through the CLI entry point (default recipe)."""
    from yolodistill.cli import entrypoint

    args = train_args(workdir / "runs", name="cli")
    argv = ["train", f"teacher={teacher_pt}", "student=yolov8n.yaml", f"data={data_yaml}"]
    argv += [f"{k}={v}" for k, v in args.items()]
    assert entrypoint(argv) == 0
    return workdir / "runs" / "cli"


@pytest.fixture(scope="session")
def midway_last(distilled_run, workdir) -> Path:
    """The `last.pt` of `distilled_run` as a 2-epoch run leaves it after its first epoch: something to resume (the
    finished run's own `last.pt` has nothing left to resume). Resuming it continues in `distilled_run`."""
    ckpt = torch.load(distilled_run / "weights" / "last.pt", map_location="cpu", weights_only=False)
    ckpt["epoch"], ckpt["train_args"]["epochs"] = 0, 2
    path = workdir / "midway" / "last.pt"
    path.parent.mkdir(exist_ok=True)
    torch.save(ckpt, path)
    return path
