"""Is the benchmark regime one where distillation can show? The YOLOv8n student alone, 3 seeds, under several schedules.

The regime must meet: student mean mAP50-95 ≥ 0.35, seed-to-seed std ≤ 0.03, teacher ≥ 0.15 above the student, and
a full efficacy run ≤ 90 min on the 2 cores (the runs' own times are in regime.json). A schedule `N` trains N epochs
and validates only after the last (`val=False`, scored on the last epoch: less time per run than validating every
epoch); `N:val` validates every epoch and scores the best, as efficacy.py does. Same settings as efficacy.py otherwise
(`shapes`, 128 px, batch 16, one torch thread per run, two side by side), so runs are shared with it through the
kept-run cache.

    python benchmarks/regime.py    # 30:val 31:val 32:val 31 32 33 34, seeds 0-2

31:val is the only schedule measured that met all three limits (regime.json), and the benchmarks' schedule since.

`--nbs 32` (an optimizer step every 2 batches instead of 4) probes a faster optimisation:

    python benchmarks/regime.py --schedules 30:val --nbs 32 --out regime_nbs32

Writes benchmarks/results/regime.json (NAME.json with --out NAME).
"""

from __future__ import annotations

import argparse

import common
from common import mean_std, train_all, write_json

CRITERIA = {"student_mean_min": 0.35, "student_std_max": 0.03, "teacher_gap_min": 0.15}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    schedules = ["30:val", "31:val", "32:val", "31", "32", "33", "34"]
    p.add_argument("--schedules", nargs="+", default=schedules, help="N or N:val (31:val: the regime)")
    p.add_argument("--data", default="shapes")
    p.add_argument("--teacher", default="yolov8s.yaml")
    p.add_argument("--teacher-epochs", type=int, default=50)
    p.add_argument("--student", default="yolov8n.yaml")
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--workers", type=int, default=2, help="trainings side by side, one torch thread each")
    p.add_argument("--nbs", type=int, default=None, help="Ultralytics' nominal batch size (default: its own, 64)")
    p.add_argument("--out", default="regime", help="name of the JSON in benchmarks/results/")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    from yolodistill.data import resolve_data

    data = resolve_data(args.data)
    _, teacher = common.teacher(args, data)
    schedules = [(int(s.split(":")[0]), s.endswith(":val")) for s in args.schedules]
    run = dict(model=args.student, data=data, imgsz=args.imgsz, batch=args.batch, device=args.device, fraction=1.0,
               **({"nbs": args.nbs} if args.nbs else {}))  # fmt: skip
    # every-epoch validation is Ultralytics' default: leaving `val` out keeps those runs' keys equal to efficacy.py's
    jobs = [dict(method="student", name=f"{args.out}-e{n}{'val' if val else ''}-s{s}", seed=s, epochs=n, **run,
                 **({} if val else {"val": False})) for n, val in schedules for s in args.seeds]  # fmt: skip
    results = iter(train_all(jobs, args.workers))
    rows = []
    for (n, val), spec in zip(schedules, args.schedules):
        per_seed = [{"seed": s, **next(results)} for s in args.seeds]
        mean, std = mean_std([r["map50_95"] for r in per_seed])
        gap = teacher["map50_95"] - mean
        rows.append({"schedule": spec, "epochs": n, "validate_every_epoch": val, "per_seed": per_seed,
                     "map50_95_mean": mean, "map50_95_std": std, "teacher_gap": gap,
                     "meets": mean >= CRITERIA["student_mean_min"] and std <= CRITERIA["student_std_max"]
                     and gap >= CRITERIA["teacher_gap_min"]})  # fmt: skip
    write_json(args.out, {"nbs": args.nbs, "criteria": CRITERIA, "teacher": teacher, "seeds": args.seeds, "rows": rows})
    print(f"teacher {teacher['map50_95']:.3f}")
    for r in rows:
        seeds = " / ".join(f"{x['map50_95']:.3f}" for x in r["per_seed"])
        print(f"{r['schedule']:>7}: {seeds} = {r['map50_95_mean']:.3f} ± {r['map50_95_std']:.3f}, meets: {r['meets']}")


if __name__ == "__main__":
    main()
