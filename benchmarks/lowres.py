"""Lower-resolution student: ½-resolution student alone vs distilled from the full-resolution teacher, against the
full-resolution student. GR = (mAP_distilled_low − mAP_student_low) / (mAP_student_full − mAP_student_low).

    python benchmarks/lowres.py --quick   # 1 seed, half the train images, 6 epochs, 128 → 64 px
    python benchmarks/lowres.py           # 3 seeds, 31 epochs, the efficacy regime (`shapes`, 50-epoch teacher)

The class-KD weight of the `lowres` recipe was chosen in the former 30-epoch schedule (lowres_sweep.json):

    python benchmarks/lowres.py --epochs 30 --out lowres_sweep --recipes lowres lowres:cls_kd=2 \
        lowres:cls_kd=2,cross_kd=2 lowres:cls_kd=0.5 cwd_mimic

Same seed, same start weights and batches for every variant: each distilled row (one per `--recipes` entry; the
default for a lower-resolution student is marked) also reports its paired gain over the ½-resolution student. Two
trainings run side by side (one torch thread each); finished runs are kept. `--data synthetic --teacher-epochs 10
--epochs 10` is the older, harder preset.

Writes benchmarks/results/lowres.json and lowres.png (lowres_quick.* with --quick, NAME.* with --out NAME).
"""

from __future__ import annotations

import argparse
import re

import common
from common import gap_recovery, paired, recipe_spec, row, table, train_all, write_json


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--data", default="shapes")
    p.add_argument("--teacher", default="yolov8s.yaml")
    p.add_argument("--teacher-epochs", type=int, default=50)
    p.add_argument("--student", default="yolov8n.yaml")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--imgsz", type=int, default=128, help="full resolution; half of it a multiple of 32")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--recipes", nargs="+", default=["lowres", "cwd_mimic"], help="name or name:key=value,...")
    p.add_argument("--workers", type=int, default=2, help="trainings side by side, one torch thread each")
    p.add_argument("--out", default=None, help="name of the JSON/PNG in benchmarks/results/ (lowres[_quick])")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    from yolodistill.data import resolve_data
    from yolodistill.recipes import LOWRES_RECIPE

    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    epochs = args.epochs or (6 if args.quick else 31)
    full, low = args.imgsz, args.imgsz // 2
    if low % 32:
        raise SystemExit(f"--imgsz {full}: half of it must be a multiple of the stride 32 (e.g. 128, 192, 256, 640)")
    run = dict(epochs=epochs, batch=args.batch, device=args.device, fraction=0.5 if args.quick else 1.0)
    data = resolve_data(args.data)
    t_pt, teacher = common.teacher(args, data)

    # (name, method, its train args, whether it is the default at low resolution)
    variants = [
        (f"student@{full}", "student", {"imgsz": full}, False),
        (f"student@{low}", "student", {"imgsz": low}, False),
    ]
    variants += [(f"yolodistill:{r}@{low}<-{full}", "yolodistill", {"imgsz": low, "teacher_imgsz": full,
                  **recipe_spec(r)}, r == LOWRES_RECIPE) for r in args.recipes]  # fmt: skip
    out = args.out or common.result_name("lowres", args.quick)  # also names the run folders: none overwrites another
    labels = [f"{out}-" + re.sub(r"[^\w.@-]+", "_", v[0].replace("<-", "_from_")) for v in variants]
    jobs = [dict(method=kind, model=args.student, data=data, teacher=t_pt, name=f"{label}-s{s}", seed=s, **run,
                 **extra) for s in seeds for label, (_, kind, extra, _) in zip(labels, variants)]  # fmt: skip
    results = dict(zip((j["name"] for j in jobs), train_all(jobs, args.workers)))
    rows = []
    for label, (name, _, extra, default) in zip(labels, variants):
        runs = [{"seed": s, **results[f"{label}-s{s}"]} for s in seeds]
        rows.append(row(name, default, runs, imgsz=extra["imgsz"]))
    full_row, low_row = rows[0], rows[1]
    for r in rows[2:]:
        r["gap_recovery"] = gap_recovery(r["map50_95_mean"], low_row["map50_95_mean"], full_row["map50_95_mean"])
        r.update(paired(r["per_seed"], low_row["per_seed"]))
    mode = "quick" if args.quick else "full"
    write_json(out, {"mode": mode, "settings": {**run, "seeds": seeds, "data": args.data, "imgsz": full},
                     "teacher": teacher, "rows": rows})  # fmt: skip
    common.bar_chart(rows, rows[0]["map50_95_mean"], out, f"{args.student}: {low} px vs {full} px ({mode})")
    print(f"teacher {args.teacher}@{full}: mAP50-95 {teacher['map50_95']:.4f}\n{table(rows)}")


if __name__ == "__main__":
    main()
