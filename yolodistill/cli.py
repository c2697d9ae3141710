"""`yolodistill` command line, in the key=value style of `yolo`: train, export, demo, help, --version."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from . import __version__
from .utils import DistillError, suggest

HELP = f"""yolodistill {__version__}: distil a big Ultralytics YOLO detector into a small one.

Usage: yolodistill COMMAND key=value ...

  train   teacher=big.pt student=yolov8n.yaml data=data.yaml [recipe=NAME] [teacher_imgsz=N] [any yolo train arg]
          e.g. yolodistill train teacher=yolov8l.pt student=yolov8n.yaml data=their.yaml epochs=100 imgsz=640
          resume: yolodistill train resume=runs/detect/train/weights/last.pt
  export  model=runs/detect/train/weights/best.pt format=onnx [verify=True] [any yolo export arg]
  demo    teacher, student and distilled student on the built-in dataset, offline, on a CPU: prints a mAP table
  help    this text;  --version  the version

Distillation arguments (besides every Ultralytics train argument):
  teacher         Ultralytics detect/segment/pose/obb checkpoint whose class names include the data's (its task is
                  the run's: student and data of that task, e.g. student=yolov8n-seg.yaml data=shapes-seg), or a
                  list teacher=[a.pt,b.pt]: an ensemble, head outputs averaged
  student         model yaml (yolov8n.yaml) or .pt to start from (alias: model; its head is rebuilt for the data)
  recipe          bundled name ({{recipes}}) or path to a recipe yaml;
                  default {{default}} for a student .pt, {{scratch}} for a student yaml (from scratch;
                  {{tasks}}), {{lowres}} if teacher_imgsz > imgsz
  teacher_imgsz   teacher input size >= imgsz (lower-resolution student; default imgsz)
  unlabeled       images without labels to distil from: a folder, a .txt list or a glob
  assistant       true: with teacher_imgsz > imgsz, first train an assistant (the teacher at imgsz, distilled from
                  it), then distil the student from it at one resolution (Teacher-Assistant-Student); or the
                  best.pt of an assistant trained before. assistant_epochs: stage 1's epochs (default epochs)
  unlabeled_ratio unlabelled images per labelled one in each batch (default 1)
  data            a data yaml or a name from datasets.yaml ({{datasets}})

Recipe keys (a recipe's values, each also a train argument: recipe=cwd cwd=2 cwd_tau=4; 0 turns a loss off):
{{recipe_keys}}

Runs land in runs/detect/<name>/ as with `yolo`: weights/best.pt, last.pt, results.csv, results.png.
"""


def parse(tokens: list[str]) -> dict[str, Any]:
    """key=value tokens → dict, values typed like `yolo` does; a bare boolean key means True (`resume`)."""
    from ultralytics.cfg import DEFAULT_CFG_DICT, smart_value

    args: dict[str, Any] = {}
    for tok in tokens:
        key, sep, value = tok.partition("=")
        if sep:
            args[key.strip()] = smart_value(value.strip())
        elif isinstance(DEFAULT_CFG_DICT.get(tok), bool):
            args[tok] = True
        else:
            raise DistillError(f"'{tok}' is not key=value: write e.g. {tok}=VALUE")
    return args


def train(args: dict[str, Any]) -> None:
    """`yolodistill train`: a run of the distillation trainer of the teacher's task (`student` is `model`, as the
    trainer takes it); with `assistant=`, the two runs of Teacher–Assistant–Student (assistant.py)."""
    from . import assistant
    from .trainer import run

    trainer = assistant.train(args, run) if any(k in args for k in assistant.ASSISTANT_ARGS) else run(args)
    print(f"Distilled student: {trainer.best}")


def export(args: dict[str, Any]) -> None:
    """`yolodistill export`: Ultralytics' exporter plus verification of the exported file."""
    from .exporter import export as run_export

    run_export(**args)


def demo(args: dict[str, Any]) -> None:
    """`yolodistill demo`: teacher vs student vs distilled student on the built-in dataset."""
    from .demo import run_demo

    run_demo(**args)


COMMANDS: dict[str, Callable[[dict[str, Any]], None]] = {"train": train, "export": export, "demo": demo}


def _help() -> str:
    from .data import registry
    from .recipes import DEFAULT_RECIPE, LOWRES_RECIPE, SCRATCH_RECIPE, TASK_RECIPES, available, recipe_help

    fill = {"{recipes}": ", ".join(available()), "{datasets}": ", ".join(registry()), "{recipe_keys}": recipe_help(),
            "{default}": DEFAULT_RECIPE, "{scratch}": SCRATCH_RECIPE, "{lowres}": LOWRES_RECIPE,
            "{tasks}": ", ".join(f"{r} for {t} students" for t, r in TASK_RECIPES.items())}  # fmt: skip
    text = HELP
    for key, value in fill.items():
        text = text.replace(key, value)
    return text


def entrypoint(argv: list[str] | None = None) -> int:
    """Run a command; return the exit status. Bad input prints one line to stderr and returns 2, no traceback."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in {"help", "-h", "--help"}:
        print(_help())
        return 0
    if argv[0] in {"--version", "-V", "version"}:
        print(__version__)
        return 0
    try:
        if argv[0] not in COMMANDS:
            raise suggest(argv[0], [*COMMANDS, "help", "--version"], what="command")
        COMMANDS[argv[0]](parse(argv[1:]))
    except DistillError as e:
        print(f"yolodistill: error: {e}", file=sys.stderr)
        return 2
    return 0
