"""Seconds per training step: student alone, the floor, each yolodistill recipe and Ultralytics' built-in distillation.

The floor is a student training step plus a full teacher forward (no_grad) on the same batch: the least any offline
feature distillation can cost. The variants run interleaved in one process (round-robin, one step of each in turn, on
the same batch), so load from other processes hits them alike; the median over `--iters` steps after `--warmup` is
reported with its ratio to the floor. Every step is a full optimizer step (Ultralytics would accumulate gradients up to
its nominal batch of 64 first; the same for every variant here).

The teacher only needs the right architecture for timing: a `.yaml` is built at random initialisation (default); a
`.pt` is used as is. With feature losses only, our teacher stops after its last tapped layer (it skips its Detect
head), so such a step can be under the floor; head losses (the default, class KD + LD) run the whole teacher.

Peak memory: on CUDA torch.cuda.max_memory_allocated() over the variant's steps; on CPU null (peak RSS is per process
and the variants are interleaved in one process, so it cannot be attributed).

    python benchmarks/overhead.py --quick   # CPU, imgsz 160, batch 8, 30 iters
    python benchmarks/overhead.py           # CPU, imgsz 160, batch 16, 50 iters
    python benchmarks/overhead.py --device 0 --imgsz 640 --teacher yolov8l.yaml --student yolov8n.yaml --batch 16 --amp
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import common  # noqa: F401  (sets YOLO_OFFLINE before ultralytics is imported)
import torch
import yaml
from common import CACHE, RUNS, random_checkpoint, write_json


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="batch 8, 30 iters, 3 warm-up steps")
    p.add_argument("--device", default="cpu")
    p.add_argument("--imgsz", type=int, default=160)
    p.add_argument("--teacher", default="yolov8s.yaml", help="teacher .yaml (random init) or .pt")
    p.add_argument("--student", default="yolov8n.yaml")
    p.add_argument("--data", default="synthetic", help="data yaml or yolodistill dataset name")
    p.add_argument("--batch", type=int, default=None, help="default 16 (8 with --quick)")
    p.add_argument("--iters", type=int, default=None, help="timed steps per variant, default 50 (30 with --quick)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per variant first, default 5 (3 quick)")
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    from yolodistill.recipes import DEFAULT_RECIPE, SCRATCH_RECIPE

    recipes = list(dict.fromkeys(["ld", "head_kd", "head_bckd", DEFAULT_RECIPE, SCRATCH_RECIPE, "cwd_mimic"]))
    p.add_argument("--recipes", nargs="+", default=recipes, help="the default recipe of --student must be one")
    p.add_argument("--dis", type=float, default=6.0, help="Ultralytics' distillation weight (its default 6.0)")
    p.add_argument("--profile-steps", type=int, default=3, help="steps of our default recipe under torch.profiler")
    a = p.parse_args()
    a.batch = a.batch or (8 if a.quick else 16)
    a.iters = a.iters or (30 if a.quick else 50)
    a.warmup = a.warmup if a.warmup is not None else (3 if a.quick else 5)
    return a


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Variant:
    """One trainer after Ultralytics' setup, and what one training step of it is."""

    def __init__(self, method: str, trainer, default: bool = False, extra_forward=None):
        self.method, self.trainer, self.default, self.extra_forward = method, trainer, default, extra_forward
        self.times: list[float] = []
        self.peak = 0

    def step(self, batch: dict) -> float:
        t = self.trainer
        cuda = t.device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(t.device)
        sync(t.device)
        t0 = time.perf_counter()
        with torch.autocast(t.device.type, enabled=t.amp):
            b = t.preprocess_batch(dict(batch))
            if self.extra_forward is not None:  # the floor: a full teacher forward on the same batch
                with torch.no_grad():
                    self.extra_forward(b["img"])
            loss, _ = t.model(b)
        t.scaler.scale(loss.sum()).backward()
        t.optimizer_step()
        sync(t.device)
        dt = time.perf_counter() - t0
        if cuda:
            self.peak = max(self.peak, torch.cuda.max_memory_allocated(t.device))
        return dt


def build(args: argparse.Namespace) -> tuple[list[Variant], str]:
    from ultralytics.models.yolo.detect import DetectionTrainer

    from yolodistill import DistillationTrainer
    from yolodistill.data import resolve_data
    from yolodistill.recipes import default_recipe, starts_pretrained
    from yolodistill.teacher import load_teacher

    data = resolve_data(args.data)
    if args.teacher.endswith(".pt"):
        teacher = Path(args.teacher)
    else:
        names = yaml.safe_load(Path(data).read_text())["names"]
        path = CACHE / f"random-{Path(args.teacher).stem}-{'-'.join(map(str, names))[:40]}.pt"
        teacher = random_checkpoint(args.teacher, list(names.values()) if isinstance(names, dict) else names, path)
    common_args = dict(model=args.student, data=data, imgsz=args.imgsz, batch=args.batch, device=args.device)
    common_args.update(workers=0, epochs=1, amp=args.amp, seed=0, deterministic=False, plots=False, val=False)
    common_args.update(project=str(RUNS / "overhead"), exist_ok=True, warmup_epochs=0)

    def setup(cls, name: str, **extra):
        trainer = cls(overrides={**common_args, "name": name, **extra})
        trainer._setup_train()
        trainer.model.train()
        return trainer

    student = setup(DetectionTrainer, "student")
    floor_teacher = load_teacher(teacher).to(student.device)  # fused, eval, no grad: what our distiller loads
    variants = [Variant("student", student), Variant("floor", student, extra_forward=floor_teacher.predict)]
    default = default_recipe(starts_pretrained(args.student))
    for recipe in args.recipes:
        trainer = setup(DistillationTrainer, f"yolodistill-{recipe}", teacher=str(teacher), recipe=recipe)
        variants.append(Variant(f"yolodistill:{recipe}", trainer, default=recipe == default))
    trainer = setup(DetectionTrainer, "ultralytics", distill_model=str(teacher), dis=args.dis)
    variants.append(Variant("ultralytics:distill_model", trainer))
    return variants, str(teacher)


def profile(variant: Variant, batches: list[dict]) -> list[dict]:
    """torch.profiler over a few steps of one variant; the top operators by self CPU (and CUDA) time."""
    from torch.profiler import ProfilerActivity, record_function

    distiller = variant.trainer.distiller
    teacher_predict, distill_forward = distiller.teacher.predict, distiller.forward

    def labelled(fn, label):
        def run(*a, **k):
            with record_function(label):
                return fn(*a, **k)

        return run

    distiller.teacher.predict = labelled(teacher_predict, "yolodistill.teacher_forward")
    distiller.forward = labelled(distill_forward, "yolodistill.distill_terms")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with torch.profiler.profile(activities=activities) as prof:
        for b in batches:
            with record_function("train_step"):
                variant.step(b)
    del distiller.teacher.predict, distiller.forward
    key = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
    events = prof.key_averages()
    total = sum(getattr(e, key) for e in events) or 1
    top = sorted(events, key=lambda e: getattr(e, key), reverse=True)[:15]
    rows = [{"name": e.key, "self_ms": getattr(e, key) / 1e3, "share": getattr(e, key) / total} for e in top]
    labels = ("train_step", "yolodistill.teacher_forward", "yolodistill.distill_terms")
    rows += [{"name": e.key, "total_ms": e.cpu_time_total / 1e3, "calls": e.count} for e in events if e.key in labels]
    print(events.table(sort_by=key, row_limit=15))
    return rows


def device_name(device: torch.device) -> str:
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f"{device}"


def main() -> None:
    args = parse_args()
    t_start = time.time()
    variants, teacher = build(args)
    loader = variants[0].trainer.train_loader
    batches, it = [], iter(loader)
    n_batches = min(len(loader), 8)  # a few distinct batches, reused round-robin (data loading is not timed)
    for _ in range(n_batches):
        batches.append(next(it))
    for i in range(args.warmup + args.iters):
        batch = batches[i % n_batches]
        last = {}
        for v in variants:
            last[v.method] = v.step(batch)
            if i >= args.warmup:
                v.times.append(last[v.method])
        if i % 5 == 0:
            print(f"round {i + 1}/{args.warmup + args.iters}: " + ", ".join(f"{k} {dt:.3f}s" for k, dt in last.items()))
    floor = statistics.median(next(v for v in variants if v.method == "floor").times)
    rows = []
    for v in variants:
        step = statistics.median(v.times)
        rows.append(
            {
                "method": v.method,
                "default": v.default,
                "step_s": step,
                "step_s_iqr": statistics.quantiles(v.times, n=4)[::2] if len(v.times) > 1 else None,
                "ratio_to_floor": step / floor,
                "peak_mem_mb": v.peak / 2**20 if v.trainer.device.type == "cuda" else None,
            }
        )
    default = next(v for v in variants if v.default)
    top = profile(default, batches[: args.profile_steps]) if args.profile_steps else []
    settings = {k: v for k, v in vars(args).items()}
    settings.update(teacher_checkpoint=teacher, batches_reused=n_batches)
    write_json(
        "overhead",
        {
            "mode": "quick" if args.quick else "full",
            "settings": settings,
            "device": device_name(variants[0].trainer.device),
            "peak_mem_note": "CUDA: torch.cuda.max_memory_allocated per variant step; CPU: null (not attributable)",
            "rows": rows,
            "profile_default_recipe": top,
            "runtime_s": time.time() - t_start,
        },
    )
    print(f"\n{'method':28}{'step s':>9}{'× floor':>9}")
    for r in rows:
        print(f"{r['method']:28}{r['step_s']:9.3f}{r['ratio_to_floor']:9.3f}")


if __name__ == "__main__":
    main()
