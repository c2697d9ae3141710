"""Accuracy gain and gap recovery on the built-in dataset (or any data yaml), side by side with Ultralytics' built-in.

A YOLOv8s teacher is trained once with plain Ultralytics (cached, the same one `yolodistill demo` uses); then, for each
seed and with identical settings: the YOLOv8n student alone, the default recipe and the others of
`yolodistill.recipes.OTHER_RECIPES`, and Ultralytics' `distill_model` at its default `dis`. A seed means the same
start weights and the same batches for every method, so each method is read by its paired gain: per seed, its mAP50-95
minus the student's of the same seed (mean ± standard error). Gap recovery
GR = (mAP_distilled − mAP_student) / (mAP_teacher − mAP_student) on mean mAP50-95.

The regime, the `shapes` preset: 600 train / 200 val images of 128 px, 4 classes; YOLOv8s teacher 50
epochs at 128 px; students 31 epochs from scratch at 128 px, batch 16, validated every epoch and scored on the best
(`regime.py` measured the schedules around it; the figures are in efficacy.json and regime.json). Two trainings run
side by side, one torch thread each; every finished run is kept (`common.train`: by the hash of its settings), so an
interrupted run continues where it stopped. Measured figures are in README "Results".

    python benchmarks/efficacy.py --quick   # 1 seed, 10 epochs, student + default only
    python benchmarks/efficacy.py           # 3 seeds × 5 methods, 31 epochs

A recipe may carry overrides of its keys, which is how the default was chosen (`--dis` with no value skips
Ultralytics); this sweep, run in the former 30-epoch schedule, wrote efficacy_sweep.json:

    python benchmarks/efficacy.py --epochs 30 --out efficacy_sweep --dis 6 2 18 --recipes head_kd:cls_kd=0.5,ld=0.25 \
        head_kd:cls_kd=1,ld=0.5 head_kd head_kd:cls_kd=4,ld=2 head_kd:cls_kd_tau=2 head_kd:box_kd=1 \
        head_kd:cls_kd=0.5,ld=0.25,cls_kd_weighted=true cross_kd head_kd:cross_kd=2 head_pkd cwd_mimic

`--data synthetic --teacher-epochs 10 --epochs 10` is the older, harder preset (students near mAP50-95 0.01).
Writes benchmarks/results/efficacy.json and efficacy.png (efficacy_quick.* with --quick).
"""

from __future__ import annotations

import argparse
import re

import common
from common import gap_recovery, paired, recipe_spec, row, table, train_all, write_json


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--data", default="shapes", help="data yaml or datasets.yaml name")
    p.add_argument("--teacher", default="yolov8s.yaml", help="teacher yaml (trained here, cached) or a trained .pt")
    p.add_argument("--teacher-epochs", type=int, default=50)
    p.add_argument("--student", default="yolov8n.yaml")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--fraction", type=float, default=1.0, help="share of the train images")
    p.add_argument("--recipes", nargs="+", default=None, help="name or name:key=value,... (default: the default + 2)")
    p.add_argument("--dis", type=float, nargs="*", default=None, help="Ultralytics dis values (default 6.0 first)")
    p.add_argument("--workers", type=int, default=2, help="trainings side by side, one torch thread each")
    p.add_argument("--out", default=None, help="name of the JSON/PNG in benchmarks/results/ (efficacy[_quick])")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    from yolodistill.data import resolve_data
    from yolodistill.recipes import OTHER_RECIPES, default_recipe, starts_pretrained

    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    dis = ([] if args.quick else [6.0]) if args.dis is None else args.dis
    default_name = default_recipe(starts_pretrained(args.student))  # the default for the student's start
    recipes = args.recipes or ([default_name] if args.quick else [default_name, *OTHER_RECIPES])
    epochs = args.epochs or (10 if args.quick else 31)
    run = dict(epochs=epochs, imgsz=args.imgsz, batch=args.batch, device=args.device, fraction=args.fraction)
    data = resolve_data(args.data)
    t_pt, teacher = common.teacher(args, data)
    out = args.out or common.result_name("efficacy", args.quick)  # also names the run folders: none overwrites another

    methods = [("student", "student", {}), *((f"yolodistill:{r}", "yolodistill", recipe_spec(r)) for r in recipes)]
    methods += [("ultralytics:distill_model", "ultralytics", {"dis": d}) for d in dis]
    labels = [re.sub(r"[^\w.-]+", "_", n) + (f"-dis{e['dis']:g}" if "dis" in e else "") for n, _, e in methods]
    # the students first (every row pairs with them, and they tell at once whether the regime holds), then seed-major,
    # so that a run cut short has every method on its first seeds (pairs stay complete)
    order = [(s, 0) for s in seeds] + [(s, m) for s in seeds for m in range(1, len(methods))]
    jobs = [dict(method=methods[m][1], model=args.student, data=data, teacher=t_pt, name=f"{out}-{labels[m]}-s{s}",
                 seed=s, **run, **methods[m][2]) for s, m in order]  # fmt: skip
    results = dict(zip(((j["name"], j["seed"]) for j in jobs), train_all(jobs, args.workers)))
    rows = []
    for label, (name, _, extra) in zip(labels, methods):
        runs = [{"seed": s, **results[(f"{out}-{label}-s{s}", s)]} for s in seeds]
        default = extra == {"recipe": default_name} or extra.get("dis") == 6.0
        rows.append(row(name, default, runs, **({"dis": extra["dis"]} if "dis" in extra else {})))
    student = rows[0]
    for r in rows[1:]:
        r["gap_recovery"] = gap_recovery(r["map50_95_mean"], student["map50_95_mean"], teacher["map50_95"])
        r.update(paired(r["per_seed"], student["per_seed"]))
    mode = "quick" if args.quick else "full"
    write_json(out, {"mode": mode, "settings": {**run, "seeds": seeds, "data": args.data}, "teacher": teacher,
                     "rows": rows})  # fmt: skip
    common.bar_chart(rows, teacher["map50_95"], out, f"{args.student} on {args.data}, {epochs} epochs, seeds {seeds}")
    print(f"teacher {args.teacher}: mAP50-95 {teacher['map50_95']:.4f}\n{table(rows)}")


if __name__ == "__main__":
    main()
