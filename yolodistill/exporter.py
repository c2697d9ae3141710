"""`yolodistill export`: Ultralytics' exporter, then a check that the exported file computes what the student does.

The checkpoint's model is the student alone (the `distill` key holds adapters outside it), so Ultralytics exports it
as it would any YOLO checkpoint, at the checkpoint's own training `imgsz` unless one is given.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from .utils import DistillError

N_IMAGES = 16  # enough to catch a wrong graph and to time both models, cheap next to the export itself
# NMS as in validation (the boxes mAP is computed from: a young student has none above predict's 0.25); a matched box
# must be practically the same box.
CONF, IOU, MATCH_IOU = 0.001, 0.7, 0.95
# Largest |exported - PyTorch| allowed over the raw head outputs (boxes / imgsz, class scores in [0, 1]).
# FP32 runtimes differ from PyTorch only in summation order: measured ~1e-6, so 1e-3 flags a wrong graph.
TOL_FP32 = 1e-3
# FP16 rounds every activation to 11 significant bits (2**-11 ≈ 5e-4 relative) through ~60 layers and sigmoids;
# TensorRT also enables TF32 (same 10-bit mantissa) for FP32 engines by default, so engines get this one too.
TOL_FP16 = 2e-2
TOL_INT8 = 1e-1  # 8-bit activations: only a gross error exceeds this; agreement says more about INT8 exports
ENGINE = {"engine", "tensorrt", "trt"}  # Ultralytics' names for the TensorRT format
# what each task's raw outputs hold besides boxes and scores (all of it compared)
_EXTRAS = {"segment": ", mask coefficients, prototypes", "pose": ", keypoints/imgsz", "obb": ", angles"}


@dataclass
class ExportResult:
    """The exported file and, unless verify=False, how it compares with the PyTorch student on the same images."""

    path: Path
    max_abs_diff: float | None = None  # raw head outputs, boxes divided by imgsz
    agreement: float | None = None  # share of all boxes of both models matched across them (IoU >= 0.95, same class)
    latency_ms_torch: float | None = None  # median per image, batch 1
    latency_ms_exported: float | None = None
    tolerance: float | None = None
    passed: bool | None = None  # None: not verified
    boxes: int | None = None  # boxes after NMS, both models together: what `agreement` is a share of


def export(
    model: str | Path | None = None, verify: bool = True, images: str | Path | None = None, **kwargs: Any
) -> ExportResult:
    """Export `model` (a .pt) with `ultralytics.YOLO(model).export(**kwargs)`, then verify unless `verify=False`.

    Verification runs the exported file and the PyTorch student on up to 16 images (`images`: a directory, file or
    glob; default the checkpoint's val images when its data yaml exists here, else the built-in dataset's), letterboxed
    to the export's imgsz, and reports: the max abs difference of the raw head outputs, with boxes divided by imgsz
    (float32 rounding grows with the box coordinates in pixels, so one tolerance serves every input size) and class
    scores in [0, 1] as they are; the share of boxes after NMS (conf 0.001, IoU 0.7) of either model that the other has
    at IoU >= 0.95 with the same class; the median ms/image of both at batch 1. It raises DistillError when the
    difference exceeds the tolerance (1e-3 FP32; 2e-2 FP16 and TensorRT; 1e-1 INT8); the exported file is kept.
    """
    if model is None:
        raise DistillError("export needs model=path/to/best.pt")
    if verify and kwargs.get("nms"):
        raise DistillError("nms=True puts NMS inside the graph, leaving no raw outputs to verify: add verify=False")
    if str(kwargs.get("format", "")).lower() in ENGINE:
        _check_tensorrt()
    from ultralytics import YOLO

    yolo = YOLO(model)
    path = Path(yolo.export(**kwargs))  # imgsz defaults to the checkpoint's train_args imgsz (Ultralytics' own rule)
    if not verify:
        return ExportResult(path)
    return _verify(model, path, images or _default_images(yolo.model.args.get("data")), kwargs.get("device"))


def _check_tensorrt() -> None:
    """Fail in one line before Ultralytics would try to pip-install TensorRT or build on a missing GPU."""
    missing = []
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        missing.append("the 'tensorrt' package (pip install tensorrt)")
    if not torch.cuda.is_available():
        missing.append("a CUDA GPU visible to PyTorch")
    if missing:
        raise DistillError(f"format=engine (TensorRT) needs {' and '.join(missing)}; export format=onnx instead")


def _default_images(data: str | None) -> str:
    """Validation images of the checkpoint's data yaml when it is on this machine, else of the built-in dataset."""
    from ultralytics.data.utils import check_det_dataset

    from .data import resolve_data

    if data and Path(data).is_file():
        try:
            return check_det_dataset(data, autodownload=False)["val"]
        except Exception:  # images moved or never downloaded: the built-in ones still exercise the graph
            pass
    return check_det_dataset(resolve_data("synthetic"), autodownload=False)["val"]


def _load_images(images: str | list, imgsz: list[int]) -> list[torch.Tensor]:
    """Up to N_IMAGES images as Ultralytics' predictor feeds them: letterboxed, RGB, CHW, float in [0, 1]."""
    from ultralytics.data.augment import LetterBox
    from ultralytics.data.loaders import LoadImagesAndVideos
    from ultralytics.data.utils import IMG_FORMATS

    try:
        files = [f for f in LoadImagesAndVideos(images).files if Path(f).suffix[1:].lower() in IMG_FORMATS]
    except FileNotFoundError as e:
        raise DistillError(f"images={images}: {str(e).splitlines()[0]}") from None  # its format list is multi-line
    letterbox, out = LetterBox(imgsz, auto=False), []
    for f in files:
        img = cv2.imread(f)
        if img is not None:
            img = letterbox(image=img)[..., ::-1].transpose(2, 0, 1)
            out.append(torch.from_numpy(np.ascontiguousarray(img))[None].float() / 255)
        if len(out) == N_IMAGES:
            break
    if not out:
        raise DistillError(f"no readable images in images={images}: name a directory, file or glob of images")
    return out


def _verify(model: str | Path, path: Path, images: str | list, device: Any) -> ExportResult:
    """Run both models on the same letterboxed images; compare raw outputs, NMS boxes and median latency."""
    from ultralytics.nn.autobackend import AutoBackend
    from ultralytics.utils import LOGGER, colorstr
    from ultralytics.utils.metrics import batch_probiou, box_iou
    from ultralytics.utils.nms import non_max_suppression
    from ultralytics.utils.ops import Profile
    from ultralytics.utils.torch_utils import select_device

    dev = select_device(device or ("0" if path.suffix == ".engine" else "cpu"), verbose=False)
    exported = AutoBackend(str(path), device=dev, verbose=False)
    student = AutoBackend(str(model), device=dev, verbose=False, end2end=exported.end2end)  # same head as exported
    imgsz = list(exported.imgsz)
    ims = [im.to(dev) for im in _load_images(images, imgsz)]
    outputs, latency = [], []
    with torch.inference_mode():
        for backend in (student, exported):
            backend(ims[0])  # warm-up: first calls allocate memory and pick kernels
            ys, ms = [], []
            for im in ims:
                with Profile(device=dev) as dt:
                    y = backend(im)
                ys.append([t.float().cpu() for t in _tensors(y)])
                ms.append(dt.dt * 1e3)
            outputs.append([torch.cat(t) for t in zip(*ys)])
            latency.append(statistics.median(ms))
    shapes = [[tuple(t.shape) for t in y] for y in outputs]
    if shapes[0] != shapes[1]:
        raise DistillError(f"{path} outputs shapes {shapes[1]}, the PyTorch student {shapes[0]}: add verify=False")
    task, nc = exported.task, len(exported.names)
    pixels = _pixel_rows(task, nc, exported.metadata.get("kpt_shape"), exported.end2end)
    diffs = [(a - b).abs() for a, b in zip(*outputs)]
    d = diffs[0].transpose(1, 2) if exported.end2end else diffs[0]  # (B, values, N) in both layouts
    d[:, pixels] /= max(imgsz)
    diff = max(x.max().item() for x in diffs)

    rotated = task == "obb"
    matched = total = 0
    nms = (non_max_suppression(y[0], CONF, IOU, nc=nc, rotated=rotated, end2end=exported.end2end) for y in outputs)
    for a, b in zip(*nms):
        total += len(a) + len(b)
        if len(a) and len(b):
            # rotated: (x, y, w, h, conf, cls, ..., angle), compared by probabilistic IoU as Ultralytics' OBB NMS does
            iou = (
                batch_probiou(a[:, [0, 1, 2, 3, -1]], b[:, [0, 1, 2, 3, -1]])
                if rotated
                else box_iou(a[:, :4], b[:, :4])
            )
            hit = (iou >= MATCH_IOU) & (a[:, 5:6] == b[:, 5][None])
            matched += int(hit.any(1).sum() + hit.any(0).sum())
    agreement = matched / total if total else 1.0  # no box on either side: nothing to disagree on

    tol = _tolerance(exported.format, exported.metadata.get("args", {}).get("quantize"))
    ok = diff <= tol
    LOGGER.info(
        f"{colorstr('verify:')} {path} vs PyTorch on {len(ims)} images at imgsz {imgsz}\n"
        f"  max |diff| of raw outputs (boxes/imgsz, scores{_EXTRAS.get(task, '')}): {diff:.2e}, tolerance {tol:.0e}: "
        f"{'PASS' if ok else 'FAIL'}\n"
        f"  NMS boxes agreeing (IoU>={MATCH_IOU}, same class, both sides): {agreement:.1%} of {total}\n"
        f"  median latency: PyTorch {latency[0]:.1f} ms/image, {exported.format} {latency[1]:.1f} ms/image"
    )
    if not ok:
        raise DistillError(
            f"{path} differs from the PyTorch student: max abs diff {diff:.2e} > tolerance {tol:.0e} "
            "(raw outputs, boxes/imgsz); the file is kept, verify=False skips this check"
        )
    return ExportResult(path, diff, agreement, latency[0], latency[1], tol, ok, total)


def _tensors(y: Any) -> list[torch.Tensor]:
    """A backend's outputs as a flat list of tensors: the decoded predictions, and a segmentation model's prototypes
    (ONNX & co give [output0, proto], PyTorch ((output0, proto), raw dict); the raw dict of PyTorch is left out)."""
    if isinstance(y, torch.Tensor):
        return [y]
    if isinstance(y, (list, tuple)):
        return [t for x in y for t in _tensors(x)]
    return []


def _pixel_rows(task: str, nc: int, kpt_shape: list[int] | None, end2end: bool) -> list[int]:
    """The values of a prediction that are pixel coordinates, as indices into its (B, values, N) layout: the box
    (x, y, w, h or x1, y1, x2, y2) and a pose model's keypoint x and y, after the scores (end-to-end: after score and
    class). Their differences are divided by imgsz; scores, mask coefficients, visibilities and angles are not."""
    rows = [0, 1, 2, 3]
    if task == "pose" and kpt_shape:
        start, (j, dims) = 6 if end2end else 4 + nc, kpt_shape
        rows += [start + k * dims + c for k in range(j) for c in (0, 1)]
    return rows


def _tolerance(fmt: str, quantize: Any) -> float:
    """Tolerance for the export's precision; TensorRT engines are never better than TF32."""
    q = str(quantize).lower()
    if q in {"8", "int8", "w8a8", "w8a16", "w8a32"}:
        return TOL_INT8
    return TOL_FP16 if q in {"16", "fp16", "w16a16"} or fmt == "engine" else TOL_FP32
