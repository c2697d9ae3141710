"""Shared by the benchmark scripts: machine info, teachers, one training run, mean/std, gap recovery, JSON output."""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_OFFLINE", "1")  # before ultralytics is imported: never reach the network

import functools
import hashlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's yolodistill, installed or not
RESULTS = Path(os.environ.get("BENCH_RESULTS", ROOT / "benchmarks" / "results"))  # tests write elsewhere
CACHE = Path(os.environ.get("BENCH_CACHE", "/tmp/bench_cache"))
RUNS = Path(os.environ.get("BENCH_RUNS", "/tmp/bench_runs"))
# Finished runs' results, by the hash of their settings: in the repository by default, so that a benchmark longer than
# one session continues in the next one (the run folders and checkpoints under RUNS are not needed for that).
KEPT = Path(os.environ.get("BENCH_KEPT", ROOT / "benchmarks" / "kept"))


def machine() -> dict[str, Any]:
    """Platform, CPU count, accelerator and library versions."""
    import ultralytics

    import yolodistill

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ultralytics": ultralytics.__version__,
        "yolodistill": yolodistill.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = os.getloadavg()
    return info


def command_line() -> str:
    """The exact command that produced a result."""
    return " ".join([Path(sys.executable).name, *sys.argv])


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def gap_recovery(distilled: float, low: float, high: float) -> float | None:
    """(distilled − low) / (high − low): the share of the gap between `low` and `high` that distillation recovers."""
    return (distilled - low) / (high - low) if high != low else None


def result_name(base: str, quick: bool) -> str:
    """`base`, or `base_quick` for a --quick run, so a smoke test never overwrites a full run's results."""
    return f"{base}_quick" if quick else base


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write benchmarks/results/<name>.json (with the command line and machine added) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"command": command_line(), "machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    return path


def measured(name: str, key: str) -> dict[str, Any]:
    """The `key` entry (regimes, tasks) of benchmarks/results/<name>.json as written before; {} when there is none."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text())[key] if path.is_file() else {}


def random_checkpoint(cfg: str, names: list[str], path: Path, seed: int = 0) -> Path:
    """A random-init detection checkpoint saved the way Ultralytics does (for timing only: weights do not matter)."""
    from ultralytics.nn.tasks import DetectionModel

    if not path.exists():
        torch.manual_seed(seed)
        model = DetectionModel(cfg, nc=len(names), verbose=False)
        model.names = dict(enumerate(names))
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": None, "ema": model.half(), "train_args": {}}, path)
    return path


def teacher(args: Any, data: str) -> tuple[Path, dict[str, Any]]:
    """`args.teacher` as given (a .pt), or the YOLOv8s-style teacher `yolodistill demo` trains and caches for these
    settings (trained here when missing); with its own mAP on the validation split."""
    from yolodistill.demo import teacher_checkpoint

    shared = dict(imgsz=args.imgsz, batch=args.batch, device=args.device, seed=0, workers=0)
    if args.teacher.endswith(".pt"):
        path = Path(args.teacher)
    else:
        path = teacher_checkpoint(args.teacher, data, args.teacher_epochs, **shared)
    info = {
        "model": args.teacher,
        "epochs": args.teacher_epochs,
        "imgsz": args.imgsz,
        "checkpoint": str(path),
        "weights_sha256": weights_sha256(path),
    }
    return path, {**info, **validate(path, data, shared)}


def trained(cfg: str, data: str, epochs: int, imgsz: int, batch: int, device: str, train: bool = True,
            nbs: int | None = None, train_args: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """`cfg` itself when it is a .pt, else a model trained on `data` with plain Ultralytics, cached by its settings
    (`train=False`: only the path it is cached at, trained or not). `nbs`: Ultralytics' nominal batch size (None: its
    own); set, it and the batch join the cache key (the batch alone never did: every cached teacher had batch 16).
    `train_args`: further Ultralytics settings (e.g. the optimizer), each part of the key."""
    from yolodistill.demo import teacher_checkpoint, teacher_path

    if cfg.endswith(".pt"):
        return Path(cfg)
    keyed = {**({"batch": batch, "nbs": nbs} if nbs else {}), **(train_args or {})}
    if not train:
        return teacher_path(cfg, data, epochs, imgsz, seed=0, **keyed)
    return teacher_checkpoint(
        cfg, data, epochs, keyed=keyed, imgsz=imgsz, batch=batch, device=device, seed=0, workers=0
    )


# per task: Ultralytics' metrics attribute of its own output (what a task row is read by), its results.csv suffix and
# the loss columns of Ultralytics' criterion (the rest of a run's `train/*_loss` columns are distillation's)
TASK_METRIC = {"detect": ("box", "B"), "segment": ("seg", "M"), "pose": ("pose", "P"), "obb": ("box", "B")}
TASK_LOSSES = {"detect": (), "segment": ("seg_loss", "sem_loss"), "pose": ("pose_loss", "kobj_loss"),
               "obb": ("angle_loss",)}  # fmt: skip


def task_trainer(task: str) -> type:
    """Ultralytics' own trainer of `task` (plain students, teachers and its built-in distill_model)."""
    from ultralytics.models import yolo

    return {"detect": yolo.detect.DetectionTrainer, "segment": yolo.segment.SegmentationTrainer,
            "pose": yolo.pose.PoseTrainer, "obb": yolo.obb.OBBTrainer}[task]  # fmt: skip


def scores(metrics: Any, task: str = "detect") -> dict[str, float]:
    """mAP50 and mAP50-95 from Ultralytics' metrics of a validation, of the task's own output (boxes, masks,
    keypoints, rotated boxes); for segment and pose also of the boxes (`box_map50`, `box_map50_95`)."""
    own = getattr(metrics, TASK_METRIC[task][0])
    out = {"map50": float(own.map50), "map50_95": float(own.map)}
    if own is not metrics.box:
        out.update(box_map50=float(metrics.box.map50), box_map50_95=float(metrics.box.map))
    return out


def validate(weights: str | Path, data: str, args: dict[str, Any], task: str = "detect") -> dict[str, float]:
    """mAP50 and mAP50-95 of a checkpoint on the validation split (`scores`); `args` may name the `project` its
    validation folder goes to."""
    from ultralytics import YOLO

    keep = {k: args[k] for k in ("imgsz", "batch", "device", "workers", "project") if k in args}
    return scores(YOLO(weights).val(data=data, plots=False, verbose=False, **keep), task)


def train(method: str, model: str, data: str, teacher: str | Path | None = None, threads: int | None = None,
          task: str = "detect", **args: Any) -> dict[str, Any]:  # fmt: skip
    """One training run on `threads` CPU threads (None: every core, as `yolodistill demo` trains). `method`: "student"
    (plain Ultralytics), "yolodistill" (recipe etc. in args) or "ultralytics" (its built-in distill_model, `dis` in
    args), each with the trainer of `task`. Returns mAP50, mAP50-95 (of best.pt, Ultralytics' final validation: of the
    task's own output, `scores`), wall time and best.pt.

    The result, with its per-epoch `history`, is also kept, under KEPT by the hash of every
    setting but the run's name: called again with the same settings (by this benchmark or another, e.g. lowres.py's
    full-resolution student is efficacy.py's student), the finished run is read back instead of trained again, so an
    interrupted benchmark continues where it stopped."""
    from yolodistill.demo import train_with_threads
    from yolodistill.trainer import TRAINERS
    from yolodistill.utils import write_atomic

    cls = {"student": task_trainer(task), "yolodistill": TRAINERS[task], "ultralytics": task_trainer(task)}[method]
    kept, settings = kept_record(method, model, data, teacher, threads, task, **args)
    extra = _teacher_arg(method, teacher)
    args = {**RUN_DEFAULTS, **args}
    weights = run_inputs(method, model, teacher)
    if (before := kept_result(kept, weights)) is not None:
        print(f"{args['name']}: finished before with these settings, kept ({kept})")
        return before
    if kept.is_file():
        print(
            f"{args['name']}: kept run {kept} started or distilled from other weights than {list(weights)} hold now "
            "(retrained since): trained again"
        )
    t0 = time.time()
    if args.get("assistant"):  # Teacher–Assistant–Student: both stages, each on `threads`, timed together
        from yolodistill import assistant

        def run(stage: dict[str, Any]) -> Any:
            return train_with_threads(cls, threads, **stage)

        trainer = assistant.train({"model": model, "data": data, **extra, **args}, run)
    else:
        trainer = train_with_threads(cls, threads, model=model, data=data, **extra, **args)
    result = {**scores(trainer.validator.metrics, task), "time_s": time.time() - t0, "best": str(trainer.best),
              **history(trainer.csv, task)}  # fmt: skip
    kept.parent.mkdir(parents=True, exist_ok=True)
    record = json.dumps({"settings": settings, "weights": weights, "result": result}, indent=2) + "\n"
    write_atomic(kept, record.encode())  # never a half-written record
    return result


RUN_DEFAULTS = {"project": str(RUNS), "exist_ok": True, "plots": False, "workers": 0}


def _teacher_arg(method: str, teacher: str | Path | None) -> dict[str, str]:
    return {"student": {}, "yolodistill": {"teacher": str(teacher)}, "ultralytics": {"distill_model": str(teacher)}}[
        method
    ]


def kept_record(method: str, model: str, data: str, teacher: str | Path | None = None, threads: int | None = None,
                task: str = "detect", **args: Any) -> tuple[Path, dict[str, Any]]:  # fmt: skip
    """Where `train` keeps the result of the run with these arguments, and the settings it is keyed by."""
    named = {"task": task} if task != "detect" else {}  # detection runs kept before tasks existed keep their hash
    settings = run_settings({"method": method, "model": model, "data": data, "threads": threads, **named,
                             **_teacher_arg(method, teacher), **RUN_DEFAULTS, **args})  # fmt: skip
    return KEPT / f"{hashlib.sha1(json.dumps(settings).encode()).hexdigest()[:16]}.json", settings


def input_weights(model: str | Path, teacher: str | Path | None = None) -> dict[str, str]:
    """By path, `weights_sha256` of each checkpoint a run starts from or distils from and that is here: a pretrained
    student, the teacher, each member of an ensemble ('[a.pt,b.pt]')."""
    paths = [str(model), *str(teacher or "").strip("[]").split(",")]
    return {p: weights_sha256(p) for p in paths if p.endswith(".pt") and Path(p).is_file()}


def run_inputs(method: str, model: str | Path, teacher: str | Path | None) -> dict[str, str]:
    """`input_weights` of what a run of `method` reads: a plain student (method "student") never sees the teacher
    that its row is compared with, so a teacher retrained since does not make its kept run stale."""
    return input_weights(model, None if method == "student" else teacher)


def weights_sha256(path: str | Path) -> str:
    """Hash of a checkpoint's weights (names, dtypes and values), not of its bytes: Ultralytics stamps every save with
    its date, so a teacher retrained to the very same weights (same settings, machine and thread count) hashes alike."""
    p = Path(path).resolve()
    stat = p.stat()
    return _weights_sha256(str(p), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)  # a suite asks for its teacher's hash once per run; the file's stamp keys the cache
def _weights_sha256(path: str, mtime_ns: int, size: int) -> str:
    from ultralytics.nn.tasks import load_checkpoint

    model, _ = load_checkpoint(path)  # Ultralytics' own choice of ema or model, in float32
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def kept_result(kept: Path, weights: dict[str, str]) -> dict[str, Any] | None:
    """The result kept at `kept`; None when there is none, or when a checkpoint it started or distilled from is here
    with other weights (`input_weights`) than it was trained with. A cached teacher is keyed by its settings, not its
    weights: retrained in another session, it may differ (another machine or thread count), and a distilled run of the
    old teacher must not be paired with the new one's. A checkpoint that is not here is not checked: every run kept,
    a regime is tabulated again without its teacher."""
    if not kept.is_file():
        return None
    record = json.loads(kept.read_text())
    if any(record.get("weights", {}).get(p) != h for p, h in weights.items()):
        return None
    return record["result"]


def is_kept(method: str, model: str, data: str, teacher: str | Path | None = None, threads: int | None = None,
            task: str = "detect", **args: Any) -> bool:  # fmt: skip
    """Whether `train` with these arguments reads its result back instead of training."""
    kept, _ = kept_record(method, model, data, teacher, threads, task, **args)
    return kept_result(kept, run_inputs(method, model, teacher)) is not None


DETECTION_COLUMNS = ("train/box_loss", "train/cls_loss", "train/dfl_loss")


def history(results_csv: Path, task: str = "detect") -> dict[str, Any]:
    """From the results.csv Ultralytics writes: mAP50-95 of each epoch (`curve`, of the task's own output) and, per
    epoch, the training losses beyond Ultralytics' own (distillation's) as a share of them (`distill_to_detection`; 0
    for a plain student)."""
    import csv

    with open(results_csv) as f:
        rows = list(csv.DictReader(f, skipinitialspace=True))
    ratios = []
    for r in rows:
        losses = {k: float(v) for k, v in r.items() if k.startswith("train/") and k.endswith("_loss")}
        detection = sum(losses.pop(k) for k in (*DETECTION_COLUMNS, *(f"train/{c}" for c in TASK_LOSSES[task])))
        ratios.append(sum(losses.values()) / detection if detection else None)
    curve = f"metrics/mAP50-95({TASK_METRIC[task][1]})"
    return {"curve": [float(r[curve]) for r in rows], "distill_to_detection": ratios}


def recipe_spec(spec: str) -> dict[str, Any]:
    """'cwd_mimic' → {'recipe': 'cwd_mimic'}; 'cwd_mimic:cwd=10,mimic=0' adds those recipe keys as train args."""
    import yaml

    name, _, rest = spec.partition(":")
    return {"recipe": name, **{k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in rest.split(",") if kv)}}


def run_settings(args: dict[str, Any]) -> dict[str, Any]:
    """What identifies a run's result: every setting but its name, with the recipe given by the values it resolves to
    rather than by how it is spelled. Editing a bundled recipe so makes its kept runs stale, and `head_kd:cls_kd=1` and
    a head_kd whose file says cls_kd 1 are one run. Recipe keys at their default are left out: a new key (a new loss,
    off by default) changes no earlier run."""
    from yolodistill.recipes import RECIPE_KEYS, Recipe, load_recipe

    settings = {k: v for k, v in args.items() if k != "name"}
    if "recipe" in settings:
        overrides = {k: settings.pop(k) for k in RECIPE_KEYS if k in settings}
        values, defaults = load_recipe(settings["recipe"], overrides).to_dict(), Recipe().to_dict()
        settings["recipe"] = {k: v for k, v in values.items() if v != defaults[k]}
    return json.loads(json.dumps(settings, default=str, sort_keys=True))


def train_all(jobs: list[dict[str, Any]], workers: int = 2) -> list[dict[str, Any]]:
    """`train(**job)` for every job, `workers` at a time in separate processes with one torch thread each (so two
    runs side by side use both cores of a 2-core machine, and every run of a comparison trains on one thread)."""
    if workers <= 1:
        return [train(threads=1, **job) for job in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_train_job, jobs))


def _train_job(job: dict[str, Any]) -> dict[str, Any]:
    return train(threads=1, **job)


def paired(runs: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> dict[str, Any]:
    """Paired gain over the baseline: per seed, mAP50-95 minus the baseline's of the same seed; with its mean and
    standard error (sample std / √n; None for one seed)."""
    base = {r["seed"]: r["map50_95"] for r in baseline}
    gains = [r["map50_95"] - base[r["seed"]] for r in runs]
    mean, std = mean_std(gains)
    return {"paired_gain": gains, "paired_gain_mean": mean,
            "paired_gain_se": std / len(gains) ** 0.5 if len(gains) > 1 else None}  # fmt: skip


def row(method: str, default: bool, runs: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A results row: mean ± std over seeds of mAP50-95 and mAP50 (gap recovery is added by the caller)."""
    m, s = mean_std([r["map50_95"] for r in runs])
    m50, s50 = mean_std([r["map50"] for r in runs])
    return {
        "method": method,
        "default": default,
        **extra,
        "map50_95_mean": m,
        "map50_95_std": s,
        "map50_mean": m50,
        "map50_std": s50,
        "seeds": [r["seed"] for r in runs],
        "per_seed": [{k: r[k] for k in ("seed", "map50", "map50_95", "time_s")} for r in runs],
        "gap_recovery": None,
    }


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of result rows."""
    lines = [
        "| method | mAP50-95 per seed | mAP50-95 | paired gain ± se | mAP50 | gap recovery |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        gr = "–" if r["gap_recovery"] is None else f"{100 * r['gap_recovery']:.0f}%"
        name = r["method"] + (f" (dis={r['dis']})" if "dis" in r else "") + (" *default*" if r["default"] else "")
        per_seed = " / ".join(f"{p['map50_95']:.3f}" for p in r["per_seed"])
        gain = "–"
        if r.get("paired_gain_mean") is not None:
            se = r["paired_gain_se"]
            gain = f"{r['paired_gain_mean']:+.3f}" + ("" if se is None else f" ± {se:.3f}")
        lines.append(
            f"| {name} | {per_seed} | {r['map50_95_mean']:.3f} ± {r['map50_95_std']:.3f} | {gain} | "
            f"{r['map50_mean']:.3f} ± {r['map50_std']:.3f} | {gr} |"
        )
    return "\n".join(lines)


def bar_chart(rows: list[dict[str, Any]], reference: float, name: str, title: str) -> Path:
    """benchmarks/results/<name>.png: mean mAP50-95 ± std per method, the reference (teacher) as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 2, 4), tight_layout=True)
    # one line per method part and recipe override, so long names do not run into each other
    labels = [
        r["method"].replace(":", "\n").replace(",", "\n") + (f"\ndis={r['dis']}" if "dis" in r else "") for r in rows
    ]
    ax.bar(labels, [r["map50_95_mean"] for r in rows], yerr=[r["map50_95_std"] for r in rows], capsize=4)
    ax.axhline(reference, ls="--", c="k", label=f"reference {reference:.3f}")
    ax.set_ylabel("mAP50-95")
    ax.set_title(title)
    ax.legend()
    ax.tick_params(axis="x", labelsize=8)
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
