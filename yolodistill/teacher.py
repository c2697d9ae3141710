"""Loading and freezing the offline teacher: any Ultralytics detection checkpoint (YOLOv5u, v8, 11, 26, ...), or one
of the tasks whose head extends Detect (segment, pose, obb)."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn
from ultralytics.nn.tasks import guess_model_task, load_checkpoint
from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES, attempt_download_asset

from .utils import DistillError

# What torch/Ultralytics raise for a file that is not a loadable checkpoint (damaged, renamed, foreign pickle, suffix).
_UNREADABLE = (OSError, RuntimeError, EOFError, TypeError, KeyError, ValueError, AttributeError, AssertionError)
_UNREADABLE += (ModuleNotFoundError, pickle.UnpicklingError, zipfile.BadZipFile)
# the tasks yolodistill distils: their heads extend Detect, so the head losses find boxes and scores in every one
TASKS = ("detect", "segment", "pose", "obb")


def load_teacher(path: str | Path) -> nn.Module:
    """Load a detect, segment, pose or obb checkpoint as a frozen, fused, eval-mode fp32 model on the CPU.

    Raises DistillError (one line) for a missing/unreadable file, a file that is not an Ultralytics checkpoint, or a
    model of another task.
    """
    model = _load(path)
    task = model_task(model)
    if task not in TASKS:
        raise DistillError(
            f"teacher '{path}' is a {task} model: yolodistill distils {', '.join(TASKS)} models (heads with boxes)"
        )
    return freeze(model.fuse(verbose=False) if hasattr(model, "fuse") else model)


def teacher_task(path: str | Path) -> str:
    """The task of the teacher checkpoint at `path` (what picks the trainer), with load_teacher's one-line errors."""
    return model_task(_load(path))


def _load(path: str | Path) -> nn.Module:
    if not path:
        raise DistillError("no teacher given: pass teacher=path/to/teacher.pt (an Ultralytics detection checkpoint)")
    p = fetch_release(path, "teacher")
    try:
        return load_checkpoint(p, device=torch.device("cpu"))[0]
    except _UNREADABLE as e:
        raise DistillError(
            f"teacher '{path}' is not a readable Ultralytics checkpoint ({type(e).__name__}): pass a .pt saved by "
            "Ultralytics training, e.g. runs/detect/train/weights/best.pt"
        ) from e


def fetch_release(path: str | Path, who: str) -> Path:
    """`path` itself when it is a file; a bare Ultralytics release name (`yolov8l.pt`) not on disk is fetched the way
    `yolo` fetches it (Ultralytics' download helper, same places looked in and written to). Else a one-line error
    that says which: not found, or not downloadable (offline?)."""
    p = Path(path)
    if p.is_file():
        return p
    if p.name in GITHUB_ASSETS_NAMES and p.parent == Path("."):
        try:
            return Path(attempt_download_asset(p))
        except (ConnectionError, OSError, RuntimeError, ValueError) as e:  # what the download helper raises
            raise DistillError(
                f"{who} '{path}' is not on disk and could not be downloaded ({type(e).__name__}; offline?): "
                f"download it once, or pass {who}=path/to/{p.name}"
            ) from e
    raise DistillError(f"{who} '{path}' not found: pass {who}=path/to/{who}.pt")


def model_task(model: nn.Module) -> str:
    """The task from the model's own architecture (its yaml's head), not from its args, which default to detect."""
    return guess_model_task(getattr(model, "yaml", None) or model)


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode (BatchNorm uses running stats) and no gradients: the teacher is a fixed target."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
