"""yolodistill: make small Ultralytics YOLO detectors better by distilling knowledge from big ones."""

__version__ = "0.1.0"

from .api import DistillResult, distill
from .exporter import ExportResult, export
from .trainer import (
    DistillationTrainer,
    OBBDistillationTrainer,
    PoseDistillationTrainer,
    SegmentDistillationTrainer,
)
from .utils import DistillError

__all__ = [
    "DistillError",
    "DistillResult",
    "DistillationTrainer",
    "ExportResult",
    "OBBDistillationTrainer",
    "PoseDistillationTrainer",
    "SegmentDistillationTrainer",
    "__version__",
    "distill",
    "export",
]
