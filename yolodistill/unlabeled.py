"""Images nobody labelled (`unlabeled=DIR`): found and checked up front, loaded and augmented as the labelled ones are,
and appended to every labelled batch, where only the distillation terms read them.

How they mix, and why so: each training batch is a batch of B labelled images from Ultralytics' own loader with
k = max(1, round(unlabeled_ratio × B)) unlabelled images appended, from a second loader over `UnlabeledDataset` (the
same dataset class, transforms and mosaic: a mosaic of unlabelled images only, so an image is never half-labelled).
(The last batch of each pass over the unlabelled set may hold fewer.) The student and the teacher both run on all
B + k images; the detection loss runs on the first B only
(`batch_part`), so an unlabelled image never teaches "background", and its normalisation (the labelled images'
target scores, × B) stays what it is without them. The distillation terms average over all B + k and are scaled by B
as before, so `unlabeled=` adds images to distil from without changing the balance between the two losses. The number
of steps per epoch, the warm-up, the accumulation and the learning-rate schedule stay those of the labelled set; the
unlabelled loader runs on across epochs, so a large folder is seen piece by piece, k × steps images an epoch.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
from collections.abc import Iterator
from multiprocessing.pool import ThreadPool
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from ultralytics.data.dataset import YOLODataset
from ultralytics.data.utils import IMG_FORMATS, exif_size
from ultralytics.utils import NUM_THREADS

from .utils import DistillError

UNLABELED_RATIO = 1.0  # unlabelled images per labelled one in each batch (benchmarks/unlabeled.py measures it)
HOW = "pass a folder of images, a .txt list of image paths or a glob"


def _is_image(path: str) -> bool:
    return path.rpartition(".")[-1].lower() in IMG_FORMATS


def _listed(spec: str, base: Path | None) -> list[str]:
    """The image paths `spec` names: a folder (searched recursively), a .txt list (one path a line, relative ones from
    the list's folder) or a glob; a relative `spec` from `base` (the data yaml's `path`) when given."""
    path = Path(spec)
    if base is not None and not path.is_absolute():
        path = base / path
    if any(c in spec for c in "*?["):
        return sorted(f for f in glob.glob(str(path), recursive=True) if _is_image(f) and Path(f).is_file())
    if path.is_dir():
        return sorted(str(p) for p in path.rglob("*") if _is_image(p.name) and p.is_file())
    if path.is_file() and path.suffix == ".txt":
        lines = [s.strip() for s in path.read_text(encoding="utf-8-sig").splitlines() if s.strip()]
        return [str(p if p.is_absolute() else path.parent / p) for p in map(Path, lines)]
    if path.is_file():
        raise DistillError(f"unlabeled '{spec}' is a file but not a .txt list of image paths: {HOW}")
    raise DistillError(f"unlabeled '{spec}' not found: {HOW}")


def _shape(path: str) -> tuple[int, int]:
    """(height, width) of the image at `path`, EXIF rotation applied, as YOLODataset's labels hold it."""
    with Image.open(path) as im:
        w, h = exif_size(im)
    return h, w


def _problem(path: str) -> str | None:
    """Why Ultralytics could not train on the image at `path` (as its own check_image judges), None when it can."""
    try:
        with Image.open(path) as im:
            im.verify()
            w, h = exif_size(im)
            fmt = (im.format or "").lower()
    except Exception as e:  # PIL raises many types for a bad file; every one means this file cannot be read
        return (str(e).strip().splitlines() or [type(e).__name__])[0]
    if fmt not in IMG_FORMATS | {"jpeg2000"}:
        return f"format {fmt or 'unknown'} is not an image format Ultralytics reads"
    if min(w, h) < 10:
        return f"{w}×{h} px is under Ultralytics' 10 px minimum"
    return None


def find_images(spec: str | Path, base: Path | None = None) -> list[str]:
    """Every image `spec` names, each checked readable, sorted; a one-line DistillError for a missing path, no images
    or any unreadable one (nothing is trained on part of a folder silently)."""
    spec = str(spec)
    files = _listed(spec, base)
    if not files:
        formats = ", ".join(sorted(IMG_FORMATS)[:6])
        raise DistillError(f"unlabeled '{spec}' has no images ({formats}, ...): {HOW}")
    with ThreadPool(NUM_THREADS) as pool:
        problems = [(f, p) for f, p in zip(files, pool.map(_problem, files)) if p]
    if problems:
        f, p = problems[0]
        raise DistillError(
            f"unlabeled '{spec}': {len(problems)} of {len(files)} images cannot be read (e.g. '{f}': {p}): remove or "
            "replace them"
        )
    return files


def list_sha256(files: list[str]) -> str:
    """Hash of the image list (kept in checkpoints: a resume can tell that the unlabelled images changed)."""
    return hashlib.sha256("\n".join(files).encode()).hexdigest()


def unlabeled_batch(batch: int, ratio: float) -> int:
    """Unlabelled images appended to a labelled batch of `batch`: max(1, round(ratio × batch))."""
    return max(1, round(ratio * batch))


class UnlabeledDataset(YOLODataset):
    """Ultralytics' YOLODataset over a list of images that have no labels: every image has an empty label set, whatever
    label files lie beside it, and nothing (no `.cache` file) is written next to the user's images."""

    def get_img_files(self, img_path: list[str]) -> list[str]:
        """The images as `find_images` listed them (Ultralytics' own reading would take a listed .txt for a list)."""
        return list(img_path)

    def get_labels(self) -> list[dict[str, Any]]:
        """An empty label per image, in the layout of YOLODataset's labels (keypoints shaped for pose data)."""
        kpt = self.data.get("kpt_shape") if self.use_keypoints else None
        with ThreadPool(NUM_THREADS) as pool:  # headers only, as find_images read them: I/O-bound, so threads
            shapes = pool.map(_shape, self.im_files)
        return [{
            "im_file": f, "shape": shape, "cls": np.zeros((0, 1), np.float32),
            "bboxes": np.zeros((0, 4), np.float32), "segments": [], "normalized": True, "bbox_format": "xywh",
            "keypoints": np.zeros((0, *kpt), np.float32) if kpt else None,
        } for f, shape in zip(self.im_files, shapes)]  # fmt: skip


def merge(labelled: dict[str, Any], unlabelled: dict[str, Any]) -> dict[str, Any]:
    """One batch of both, the labelled images first: per-image tensors (img) and per-object ones (cls, bboxes,
    batch_idx, of which the unlabelled have none) are concatenated, as are the per-image tuples (im_file, shapes).
    `labelled` holds how many of the images have labels (a Python int: reading it costs no device sync)."""
    out = {}
    for k, v in labelled.items():
        u = unlabelled.get(k)
        if isinstance(v, torch.Tensor):
            out[k] = torch.cat([v, u])
        elif isinstance(v, (tuple, list)):
            out[k] = (*v, *u)
        else:
            out[k] = v
    out["labelled"] = len(labelled["img"])
    return out


class MixedLoader:
    """Ultralytics' train loader with unlabelled images appended to each of its batches (`merge`). It is the labelled
    loader to the trainer (length, dataset, sampler, batch size: `__getattr__`), so the epoch stays the labelled set's;
    the unlabelled loader is iterated on across epochs."""

    def __init__(self, labelled: Any, unlabelled: Any):
        self.labelled = labelled
        self.unlabelled = unlabelled
        self._extra = self._endless()

    def _endless(self) -> Iterator[dict[str, Any]]:
        return itertools.chain.from_iterable(itertools.repeat(self.unlabelled))

    def __len__(self) -> int:
        return len(self.labelled)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.labelled:
            yield merge(batch, next(self._extra))

    def __getattr__(self, name: str) -> Any:
        if name in {"labelled", "unlabelled"}:  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.labelled, name)

    def reset(self) -> None:
        """Both loaders pick up a change of their datasets (close_mosaic). A reset loader drops its iterator, so the
        endless one over it starts again too (one mid-epoch would read the dropped iterator)."""
        self.labelled.reset()
        self.unlabelled.reset()
        self._extra = self._endless()

    def close(self) -> None:
        """Shut down both loaders' workers."""
        self.labelled.close()
        self.unlabelled.close()


def batch_part(preds: Any, part: slice) -> Any:
    """The student's outputs for the images `part` of the batch (`slice(0, n)`: the n labelled ones, `slice(n, None)`
    the unlabelled): every tensor in the nested dicts, lists and tuples of an Ultralytics head's training output,
    sliced along the batch dimension."""
    if isinstance(preds, torch.Tensor):
        return preds[part]
    if isinstance(preds, dict):
        return {k: batch_part(v, part) for k, v in preds.items()}
    if isinstance(preds, (list, tuple)):
        return type(preds)(batch_part(v, part) for v in preds)
    return preds
