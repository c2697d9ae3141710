"""Segment, pose and OBB students: the student alone, the default recipe, the default recipe with each of the task's
losses, and Ultralytics' built-in `distill_model`, each task read on its own output's mAP.

Per task, on the built-in preset of that task (`shapes-seg`, `shapes-pose`, `shapes-obb`: the images of `shapes` with
the task's labels), a YOLOv8s teacher of the task is trained once with plain Ultralytics (cached); then, for each seed
and with identical settings: the YOLOv8n student of the task alone, the default recipe for students from scratch
(`recipes.SCRATCH_RECIPE`, on the detection part of the heads), the default plus each of the task's losses (`mask_kd`
and `proto_kd`, `kpt_kd` or `angle_kd`, at `--task-weight`), the recipes of `--recipes` (none by default; e.g.
`head_bckd_fg` or `ld:ld=2`) and Ultralytics' `distill_model` at its default dis=6. Rows are read as in efficacy.py — by
the paired gain over the student of the same seed and by the gap recovery GR = (mAP − mAP_student) / (mAP_teacher −
mAP_student) — on the mAP50-95 of the task's own output (mask mAP for segment, pose mAP for pose, rotated-box mAP for
OBB; for segment and pose the box mAP is kept beside it). Two trainings run side by side, one torch thread each; every
finished run is kept (`common.train`), so an interrupted run continues.

    python benchmarks/tasks.py --quick                 # 1 seed, 5 epochs, every task: a smoke test, not a measurement
    python benchmarks/tasks.py --tasks segment         # 3 seeds on one task
    python benchmarks/tasks.py --tasks obb --recipes head_bckd_fg   # and a row for another recipe
    python benchmarks/tasks.py --tasks segment --task-losses mask_kd   # a row for one task loss only (none: no row)

The regime must let the student learn (its task mAP50-95 >= 0.2) under a teacher at least 0.1 above it;
`python benchmarks/report.py` says beside each task's table whether it does. Writes benchmarks/results/tasks.json
(tasks_quick.json with --quick) after each task, keeping the tasks measured before (each with its own settings), so
`--tasks pose` adds pose to a file that has segment.
"""

from __future__ import annotations

import argparse

import common
from common import gap_recovery, mean_std, paired, row, table, train_all, write_json

# task → model yaml suffix, built-in preset, the task's losses (a row each, on top of the default)
TASKS = {"segment": ("-seg", "shapes-seg", ("mask_kd", "proto_kd")), "pose": ("-pose", "shapes-pose", ("kpt_kd",)),
         "obb": ("-obb", "shapes-obb", ("angle_kd",))}  # fmt: skip


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    p.add_argument("--data", nargs="+", default=None, help="a data yaml per task of --tasks (default: the presets)")
    p.add_argument("--teacher", default="yolov8s", help="model family of the teachers (its task yaml: yolov8s-seg)")
    p.add_argument("--teacher-epochs", type=int, default=50)
    p.add_argument("--student", default="yolov8n")
    p.add_argument("--epochs", type=int, default=None, help="the students' (default 31; --quick 5)")
    p.add_argument("--task-weight", type=float, default=1.0, help="weight of each task loss on top of the default")
    p.add_argument("--task-losses", nargs="*", default=None, help="the task's losses given a row (default all)")
    p.add_argument("--recipes", nargs="*", default=[], help="rows for more recipes (name:key=value,...)")
    p.add_argument("--dis", type=float, nargs="*", default=[6.0], help="Ultralytics distill_model's dis (none: skip)")
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--workers", type=int, default=2, help="trainings side by side, one torch thread each")
    p.add_argument("--out", default=None, help="name of the JSON in benchmarks/results/ (tasks[_quick])")
    return p.parse_args()


def task_teacher(task: str, data: str, args: argparse.Namespace) -> tuple[str, dict]:
    """The task's teacher, trained with Ultralytics' trainer of the task and cached, with its own scores."""
    from yolodistill.demo import teacher_checkpoint

    cfg = f"{args.teacher}{TASKS[task][0]}.yaml"
    shared = dict(imgsz=args.imgsz, batch=args.batch, device=args.device, workers=0, project=str(common.RUNS))
    path = teacher_checkpoint(cfg, data, args.teacher_epochs, trainer_cls=common.task_trainer(task), seed=0, **shared)
    info = {
        "model": cfg,
        "epochs": args.teacher_epochs,
        "checkpoint": str(path),
        "weights_sha256": common.weights_sha256(path),
    }
    return str(path), {**info, **common.validate(path, data, shared, task)}


def measure(task: str, data: str, args: argparse.Namespace, seeds: list[int], epochs: int, out: str) -> dict:
    """One task's entry of tasks.json: its settings, teacher and rows."""
    suffix, _, losses = TASKS[task]
    losses = [x for x in losses if args.task_losses is None or x in args.task_losses]
    t_pt, teacher = task_teacher(task, data, args)
    from yolodistill.recipes import default_recipe

    default = default_recipe(pretrained=False, task=task)  # the students are yamls: the default from scratch
    methods = [("student", "student", {}), (f"yolodistill:{default}", "yolodistill", {"recipe": default})]
    methods += [(f"yolodistill:{default}:{loss}={args.task_weight:g}", "yolodistill",
                 {"recipe": default, loss: args.task_weight}) for loss in losses]  # fmt: skip
    methods += [(f"yolodistill:{r}", "yolodistill", common.recipe_spec(r)) for r in args.recipes]
    methods += [("ultralytics:distill_model", "ultralytics", {"dis": d}) for d in args.dis]
    run = dict(epochs=epochs, imgsz=args.imgsz, batch=args.batch, device=args.device)
    # the students first (every row pairs with them), then seed-major: a run cut short has whole pairs
    order = [(s, 0) for s in seeds] + [(s, m) for s in seeds for m in range(1, len(methods))]
    jobs = [dict(method=methods[m][1], model=f"{args.student}{suffix}.yaml", data=data, teacher=t_pt, task=task,
                 name=f"{out}-{task}-m{m}-s{s}", seed=s, **run, **methods[m][2]) for s, m in order]  # fmt: skip
    results = dict(zip(((j["name"], j["seed"]) for j in jobs), train_all(jobs, args.workers)))
    rows = []
    for m, (name, _, extra) in enumerate(methods):
        runs = [{"seed": s, **results[(f"{out}-{task}-m{m}-s{s}", s)]} for s in seeds]
        r = row(name, extra == {"recipe": default}, runs, **({"dis": extra["dis"]} if "dis" in extra else {}))
        if "box_map50_95" in runs[0]:
            r["box_map50_95_mean"] = mean_std([x["box_map50_95"] for x in runs])[0]
        rows.append(r)
    student = rows[0]
    for r in rows[1:]:
        r["gap_recovery"] = gap_recovery(r["map50_95_mean"], student["map50_95_mean"], teacher["map50_95"])
        r.update(paired(r["per_seed"], student["per_seed"]))
    print(f"{task}: teacher {teacher['model']} mAP50-95 {teacher['map50_95']:.4f}\n{table(rows)}")
    settings = {"epochs": epochs, "imgsz": args.imgsz, "batch": args.batch, "seeds": seeds,
                "teacher_epochs": args.teacher_epochs, "task_weight": args.task_weight}  # fmt: skip
    return {"data": data, "metric": common.TASK_METRIC[task][0], "settings": settings, "teacher": teacher,
            "command": common.command_line(), "rows": rows}  # fmt: skip


def main() -> None:
    args = parse_args()
    from yolodistill.data import resolve_data

    if args.data and len(args.data) != len(args.tasks):
        raise SystemExit(f"--data names {len(args.data)} data yamls for {len(args.tasks)} tasks: give one per task")
    known = {x for t in args.tasks for x in TASKS[t][2]}
    if unknown := sorted(set(args.task_losses or ()) - known):
        raise SystemExit(f"--task-losses names {unknown}, not a loss of {args.tasks}: use some of {sorted(known)}")
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    epochs = args.epochs or (5 if args.quick else 31)
    out = args.out or common.result_name("tasks", args.quick)
    data = args.data or [TASKS[t][1] for t in args.tasks]
    done = common.measured(out, "tasks")
    for task, d in zip(args.tasks, data):
        done[task] = measure(task, resolve_data(d), args, seeds, epochs, out)
        write_json(out, {"mode": "quick" if args.quick else "full", "tasks": done})  # a run cut short keeps its tasks


if __name__ == "__main__":
    main()
