"""Accuracy gain and gap recovery on the built-in dataset (or any data yaml), side by side with Ultralytics' built-in.

A YOLOv8s teacher is trained once with plain Ultralytics (cached, the same one `yolodistill demo` uses); then, for each
seed and with identical settings: the YOLOv8n student alone, each bundled recipe, and Ultralytics' `distill_model`
with its default `dis` plus a small `dis` sweep. Reports mAP50 / mAP50-95 mean ± std and gap recovery
GR = (mAP_distilled − mAP_student) / (mAP_teacher − mAP_student) on mean mAP50-95.

    python benchmarks/efficacy.py --quick   # 1 seed, half the train images, 5 epochs, 128 px: ~6 min on 2 CPU cores
    python benchmarks/efficacy.py           # 3 seeds, 10 epochs, dis sweep 2/6/20: 88 min on 2 CPU cores (measured)

A recipe may carry overrides of its keys, which is how the defaults are tuned (`--dis` with no value skips Ultralytics):

    python benchmarks/efficacy.py --imgsz 128 --seeds 0 --out sweep --dis --recipes cwd_mimic cwd_mimic:cwd=10,mimic=0

Writes benchmarks/results/efficacy.json and efficacy.png (efficacy_quick.* with --quick).
"""

from __future__ import annotations

import argparse
import re

import common
import yaml
from common import gap_recovery, row, table, train, write_json


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--data", default="synthetic", help="data yaml or datasets.yaml name")
    p.add_argument("--teacher", default="yolov8s.yaml", help="teacher yaml (trained here, cached) or a trained .pt")
    p.add_argument("--teacher-epochs", type=int, default=10)
    p.add_argument("--student", default="yolov8n.yaml")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--fraction", type=float, default=None, help="share of the train images (default 0.5 quick, 1 full)")
    p.add_argument("--recipes", nargs="+", default=["cwd", "mimic", "cwd_mimic"], help="name or name:key=value,...")
    p.add_argument("--dis", type=float, nargs="*", default=None, help="Ultralytics dis values (default 6.0 first)")
    p.add_argument("--out", default=None, help="name of the JSON/PNG in benchmarks/results/ (efficacy[_quick])")
    return p.parse_args()


def recipe_spec(spec: str) -> dict:
    """'cwd_mimic' → {'recipe': 'cwd_mimic'}; 'cwd_mimic:cwd=10,mimic=0' adds those recipe keys as train args."""
    name, _, rest = spec.partition(":")
    return {"recipe": name, **{k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in rest.split(",") if kv)}}


def main() -> None:
    args = parse_args()
    from yolodistill.data import resolve_data
    from yolodistill.recipes import DEFAULT_RECIPE

    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    dis = ([6.0] if args.quick else [6.0, 2.0, 20.0]) if args.dis is None else args.dis
    epochs = args.epochs or (5 if args.quick else 10)
    run = dict(
        epochs=epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        device=args.device,
        fraction=args.fraction or (0.5 if args.quick else 1.0),
    )
    data = resolve_data(args.data)
    t_pt, teacher = common.teacher(args, data)

    methods = [("student", "student", {}), *((f"yolodistill:{r}", "yolodistill", recipe_spec(r)) for r in args.recipes)]
    methods += [("ultralytics:distill_model", "ultralytics", {"dis": d}) for d in dis]
    rows = []
    for name, kind, extra in methods:
        label = re.sub(r"[^\w.-]+", "_", name) + (f"-dis{extra['dis']:g}" if "dis" in extra else "")
        runs = [
            {"seed": s, **train(kind, args.student, data, t_pt, name=f"eff-{label}-s{s}", seed=s, **run, **extra)}
            for s in seeds
        ]
        default = extra == {"recipe": DEFAULT_RECIPE} or extra.get("dis") == 6.0
        rows.append(row(name, default, runs, **({"dis": extra["dis"]} if "dis" in extra else {})))
    student = rows[0]["map50_95_mean"]
    for r in rows[1:]:
        r["gap_recovery"] = gap_recovery(r["map50_95_mean"], student, teacher["map50_95"])
    mode = "quick" if args.quick else "full"
    out = args.out or common.result_name("efficacy", args.quick)
    write_json(out, {"mode": mode, "settings": {**run, "seeds": seeds, "data": args.data}, "teacher": teacher,
                     "rows": rows})  # fmt: skip
    common.bar_chart(rows, teacher["map50_95"], out, f"{args.student} on {args.data}, {epochs} epochs, seeds {seeds}")
    print(f"teacher {args.teacher}: mAP50-95 {teacher['map50_95']:.4f}\n{table(rows)}")


if __name__ == "__main__":
    main()
