"""The suite of regimes: the default and the candidates against the student alone and Ultralytics' built-in, in each.

One regime proves little: a student from scratch stopped while it still climbs mostly shows how much faster distillation
makes it climb. The default recipe, one per start of the student (`student_start`: from scratch, pretrained, or at a
lower resolution than the teacher), is the one whose worst regime among the regimes of that start is best. The regimes
(`REGIMES` below; every one on the built-in generated data, offline, YOLOv8n students, one torch thread per run, two
side by side):

- `scratch`: efficacy.py's regime (`shapes`, YOLOv8s teacher 50 epochs, students from scratch 31 epochs at 128 px).
- `pretrained`: the everyday case, as users fine-tune `yolov8n.pt` on their classes: a YOLOv8n pretrained with plain
  Ultralytics on the `synthetic` preset (other classes), fine-tuned on `shapes` with `student=pretrained.pt`.
- `pretrained_long`: the same pretrained student fine-tuned twice as long (20 epochs), as users fine-tune until the
  student stops climbing: whether what `pretrained` shows comes from its short schedule (its aims are `long`'s).
- `lowres`: that pretrained student fine-tuned at ½ resolution (64 px) from the 128 px teacher; GR against the same
  student fine-tuned at 128 px.
- `cross_family`: a YOLO11s teacher (50 epochs) of the from-scratch YOLOv8n student.
- `long`: student and teacher trained towards a plateau, on the `lookalike` preset (12 look-alike classes, 1600
  training images: on `synthetic`'s 6 classes a converged YOLOv8n nearly matched a converged YOLOv8s) with
  `student_plateau`, the student alone's mean mAP50-95 at the last epoch minus at 75 % of the epochs, ≤ 0.01 as the
  aim, and the teacher ≥ 0.10 above the student. Convergence is bought with optimizer steps rather than epochs: batch
  4 and nbs 4 (a step every batch, 16× the steps per image of Ultralytics' batch 16 at nbs 64), for the YOLOv8s
  teacher (40 epochs, 16 000 steps: more than the students', as it starts slower) and the students (30 epochs, 12 000
  steps), all with the optimizer Ultralytics picks for shorter runs (`auto_short`). Whether these settings meet both
  aims is in the JSON (`student_plateau`, the teacher and student figures) and README's suite table.

Each regime's rows: the student alone (for `lowres` also the full-resolution student, the GR reference), the default
recipe of its start, Ultralytics' `distill_model` at its default dis=6 (where it runs: same family, same resolution) and
the candidates of `CANDIDATES` for that start (measured in its SCREEN regime first; in the other regimes of that start
only those whose GR in SCREEN is at least the default's worst GR over that start's regimes; a candidate
`name:ensemble=cfg` distils from the regime's teacher and `cfg` trained with its settings, as one ensemble), over 3
seeds; each distilled row with its paired gain over the student of its seed and its gap recovery
GR = (mAP_distilled − mAP_student) / (mAP_teacher − mAP_student) on mean mAP50-95.

    python benchmarks/suite.py --quick                       # scratch and pretrained, 1 seed, 3 epochs, default only
    python benchmarks/suite.py                               # every regime; finished runs are kept and read back
    python benchmarks/suite.py --regimes pretrained scratch  # some of them (suite.json keeps the others' results)
    python benchmarks/suite.py --ablations                   # also the rows of ABLATIONS, beyond the budget
    python benchmarks/suite.py --ablations --kept-only       # tabulate the kept runs again, train nothing

Every finished run is kept in benchmarks/kept/ (committed: a suite longer than one session continues in the next);
teachers and the pretrained student are trained once and cached by their settings. `--set key=value` changes a field
of every selected regime (`--set epochs=1 imgsz=64 data=my.yaml teacher=t.pt`: what the tests do), `--set
pretrained.epochs=20` of one. Writes
benchmarks/results/suite.json (suite_quick.json with --quick); `python benchmarks/report.py` puts its table in README.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common
from common import gap_recovery, paired, recipe_spec, row, table, train_all, trained, write_json

from yolodistill.recipes import default_recipe, starts_pretrained


@dataclass(frozen=True)
class Regime:
    """One setting in which every method of the suite is measured."""

    about: str
    data: str = "shapes"
    teacher: str = "yolov8s.yaml"  # a yaml (trained here with plain Ultralytics, cached) or a trained .pt
    teacher_epochs: int = 50
    student: str = "yolov8n.yaml"
    pretrained_on: str | None = None  # a datasets.yaml name: the student is first trained on it with plain Ultralytics
    pretrained_epochs: int = 30
    epochs: int = 31
    imgsz: int = 128  # the student's
    teacher_imgsz: int | None = None  # > imgsz: a lower-resolution student (GR against the student at this size)
    batch: int = 16
    fraction: float = 1.0
    nbs: int | None = None  # Ultralytics' nominal batch size of the students (None: its own, 64)
    teacher_batch: int = 16  # the teacher's training batch and nbs (every teacher cached before: 16 and Ultralytics')
    teacher_nbs: int | None = None
    train_args: tuple[tuple[str, Any], ...] = ()  # more Ultralytics settings (key, value) of every run, teachers too
    ultralytics: bool = True  # Ultralytics' distill_model runs here (same family and resolution)


def auto_short(nc: int) -> tuple[tuple[str, Any], ...]:
    """The optimizer Ultralytics' "auto" picks for a run of up to 10 000 steps on `nc` classes (AdamW at its fitted lr0,
    0.01 / (4 + nc)), held for a longer run: beyond 10 000 steps "auto" switches to another optimizer."""
    return ("optimizer", "AdamW"), ("lr0", round(0.01 / (4 + nc), 6)), ("momentum", 0.9), ("warmup_bias_lr", 0.0)


REGIMES = {
    "scratch": Regime("students from scratch, 31 epochs, still climbing (efficacy.py's regime)"),
    "pretrained": Regime("YOLOv8n pretrained on `synthetic` (other classes), fine-tuned 10 epochs",
                         pretrained_on="synthetic", epochs=10),
    "pretrained_long": Regime("the pretrained YOLOv8n fine-tuned 20 epochs", pretrained_on="synthetic", epochs=20),
    "lowres": Regime("the pretrained student fine-tuned 10 epochs at 64 px from the 128 px teacher",
                     pretrained_on="synthetic", epochs=10, imgsz=64, teacher_imgsz=128, ultralytics=False),
    "cross_family": Regime("YOLO11s teacher, YOLOv8n student from scratch, 31 epochs", teacher="yolo11s.yaml",
                           ultralytics=False),
    "long": Regime("`lookalike` preset, batch 4 and a step every batch: YOLOv8s teacher 40 epochs, students 30",
                   data="lookalike", teacher_epochs=40, teacher_batch=4, teacher_nbs=4, epochs=30, batch=4, nbs=4,
                   train_args=auto_short(nc=12)),
}  # fmt: skip
PLATEAU_REGIMES = ("long", "pretrained_long")  # held to long's aims: the student alone plateaus, the teacher well above


def student_start(regime: Regime) -> str:
    """The kind of start a regime's student has, and so its default (`recipes.default_recipe`): lowres, pretrained or
    scratch."""
    pretrained = regime.pretrained_on is not None or starts_pretrained(regime.student)
    return "lowres" if regime.teacher_imgsz else "pretrained" if pretrained else "scratch"


def default_of(kind: str) -> str:
    """The default recipe of a start (`student_start`)."""
    return default_recipe(kind == "pretrained", kind == "lowres")


# Each start has its own default, the method whose worst regime among the regimes of that start is best. Candidates
# for it (by start) are the methods issue 20 names, in their papers' form where ours differs (BCKD's box weights,
# CrossKD's align_scale). Each is measured first in its start's SCREEN regime, the cheapest one (for pretrained
# students also the one where distillation gains least), and goes on to that start's other regimes only if its GR
# there is at least the default's worst GR over them: a candidate below that in one regime cannot have a better worst
# regime. That keeps the suite in its budget.
SCREEN = {"pretrained": "pretrained", "scratch": "scratch", "lowres": "lowres"}
CANDIDATES = {
    "pretrained": ["ld", "head_kd", "head_kd:balance=0.5", "ld:box_kd=1,box_kd_weights=bckd",  # ld: a former default
                   "cross_kd:cross_kd_align=true", "ld:ensemble=yolo11s.yaml",  # the teacher and a YOLO11s together
                   "head_kd:schedule=cosine",  # every weight decays to 0.1×: distillation last gives way to the labels
                   "head_bckd",  # a former default: head_bckd_fg's class term on every anchor alike
                   # the former default (finetune at half the weights), and CrossKD on top of it
                   "head_bckd_fg", "head_bckd_fg:cross_kd=2"],
    "scratch": ["head_bckd_fg"],  # the pretrained default of its time (finetune, at twice its weights, did not run)
    # Teacher-Assistant-Student (assistant.py), and PKD on the neck maps, CrossKD or ISRD (the student's input conv
    # decoded to the large image) on top of the default's class KD (CrossKD, a little ahead, stays out of the default:
    # it cannot distil from an ensemble, which the default can)
    "lowres": ["head_kd:assistant=true", "lowres:pkd=1", "lowres:cross_kd=2", "lowres:isrd=1"],
}  # fmt: skip
# Rows beyond the budget (`--ablations`), what the candidates are read against (by regime name, else by start): in the
# `pretrained` SCREEN, head_kd (class KD + LD) split into its terms, other weightings (BCKD's form at 2× and 4× the
# class weight too), LD with feature terms, head_kd with a feature term (PKD, CWD), and box KD and CrossKD in today's
# form; in the other regimes the former defaults and the other start's default beside the default (each below it in
# its SCREEN, so as a candidate it would not run there).
ABLATIONS = {
    "pretrained": ["head_kd:balance=0.1", "head_kd:cls_kd=0.5,ld=0.25", "head_kd:ld=0", "ld:ld=2", "ld:pkd=0.5", "cwd",
                   "ld:box_kd=1", "cross_kd", "head_kd:cls_kd_beta=1,cls_kd=4", "head_kd:cls_kd_beta=1,cls_kd=8",
                   "head_kd:pkd=0.5", "head_kd:cwd=1",
                   # the former default head_bckd with heavier LD, a softer class term
                   "head_bckd:ld=2", "head_bckd:cls_kd_tau=2",
                   # head_bckd with a second teacher: what one buys where distillation gains least (an ensemble
                   # needs two teachers, so it cannot be the default, whatever its other regimes)
                   "head_bckd:ensemble=yolo11s.yaml",
                   # head_bckd_fg with twice the class weight (its weighted term is smaller than head_bckd's): level
                   # with head_bckd_fg in SCREEN (paired difference under 2 standard errors), so not sent on
                   "head_bckd_fg:cls_kd=4",
                   # head_bckd_fg with lighter LD, and its weighting without BCKD's factor (β): neither above it
                   "head_bckd_fg:ld=0.5", "head_kd:cls_kd_weighted=true"],
    "lowres": ["lowres:balance=0.5", "lowres:cls_kd_beta=1",
               "lowres:cls_kd_weighted=true,cls_kd_beta=1"],  # the pretrained default's class term at low resolution
    "pretrained_long": ["ld", "head_kd", "head_bckd", "head_bckd_fg"],  # the former defaults
    "scratch": ["ld", "head_bckd_fg", "head_bckd"],  # every regime of students from scratch
}  # fmt: skip
QUICK = dict(epochs=3)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--regimes", nargs="+", choices=list(REGIMES), default=None)
    p.add_argument("--recipes", nargs="+", default=None, help="candidates instead of CANDIDATES (name:key=value,...)")
    p.add_argument("--ablations", action="store_true", help="also the rows of ABLATIONS (beyond the suite's budget)")
    p.add_argument("--kept-only", action="store_true", help="train nothing: tabulate the rows whose runs are all kept")
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="change a Regime field in every regime")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=2, help="trainings side by side, one torch thread each")
    p.add_argument("--out", default=None, help="name of the JSON in benchmarks/results/ (suite[_quick])")
    return p.parse_args()


def with_changes(name: str, regime: Regime, changes: list[str]) -> Regime:
    """`regime` with the `--set key=value` fields (`--set NAME.key=value`: regime NAME's only), values read as YAML."""
    import yaml

    values = {}
    for kv in changes:
        key, _, value = kv.partition("=")
        only, _, key = key.rpartition(".")
        if key not in {f.name for f in dataclasses.fields(Regime)} or (only and only not in REGIMES):
            raise SystemExit(f"--set {kv}: no regime field '{key}'" + (f" or regime '{only}'" if only else ""))
        if only in ("", name):
            values[key] = yaml.safe_load(value)
    return dataclasses.replace(regime, **values)


def plateau(runs: list[dict[str, Any]]) -> float | None:
    """Mean over seeds of mAP50-95 at the last epoch minus at 75 % of the epochs (None without per-epoch figures)."""
    curves = [r.get("curve") for r in runs]
    if not all(curves):
        return None
    return sum(c[-1] - c[math.ceil(0.75 * len(c)) - 1] for c in curves) / len(curves)


def screened(name: str, kind: str, candidates: list[str], default: str, entries: dict[str, Any]) -> list[str]:
    """The candidates that run in regime `name` of start `kind`: all of them in its SCREEN regime; elsewhere those whose
    GR in SCREEN is at least the default's worst GR so far (`entries`: the suite.json entries of the regimes of that
    start measured so far, SCREEN among them; none run before SCREEN has)."""
    if name == SCREEN[kind]:
        return candidates

    def grs(entry: dict[str, Any]) -> dict[str, float]:
        return {r["method"]: r["gap_recovery"] for r in entry.get("rows", []) if r.get("gap_recovery") is not None}

    screen, key = grs(entries.get(SCREEN[kind], {})), f"yolodistill:{default}"
    if key not in screen:
        return []
    bar = min(g[key] for g in map(grs, entries.values()) if key in g)
    return [c for c in candidates if screen.get(f"yolodistill:{c}", -math.inf) >= bar]


def measure(
    name: str, regime: Regime, args: argparse.Namespace, out: str, before: dict[str, Any], candidates: list[str]
) -> dict[str, Any]:
    """Train (or read back) every run of one regime, with these candidate recipes; its entry of suite.json (`before`:
    its entry so far, if any)."""
    from yolodistill.data import resolve_data

    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    data = resolve_data(regime.data)
    full = regime.teacher_imgsz or regime.imgsz

    def teacher_of(cfg: str, train: bool = True) -> Path:  # a teacher of the regime's settings (cached)
        return trained(cfg, data, regime.teacher_epochs, full, regime.teacher_batch, args.device, train,
                       regime.teacher_nbs, dict(regime.train_args))  # fmt: skip

    # the teacher and the pretrained student by their cache paths, trained only below when a run needs them
    t_pt = teacher_of(regime.teacher, train=False)
    student = regime.student
    if regime.pretrained_on:
        source = resolve_data(regime.pretrained_on)
        student = str(trained(student, source, regime.pretrained_epochs, full, regime.batch, args.device, False))
    kind = student_start(regime)
    lowres = kind == "lowres"
    default = default_of(kind)
    ablations = [] if args.recipes is not None or not args.ablations else ABLATIONS.get(name, ABLATIONS[kind])
    recipes = [default] if args.quick else [default, *candidates, *(a for a in ablations if a not in candidates)]
    low = {"imgsz": regime.imgsz, **({"teacher_imgsz": full} if lowres else {})}

    # (row name, method, its train args, whether it is the default)
    methods = [("student", "student", {"imgsz": regime.imgsz}, False)]
    if lowres:
        methods.append((f"student@{full}", "student", {"imgsz": full}, False))
    methods += [(f"yolodistill:{r}", "yolodistill", {**low, **recipe_spec(r)}, r == default) for r in recipes]
    if regime.ultralytics and not args.quick:
        methods.append(("ultralytics:distill_model", "ultralytics", {"imgsz": regime.imgsz, "dis": 6.0}, True))
    run = dict(epochs=regime.epochs, batch=regime.batch, device=args.device, fraction=regime.fraction)
    run.update({"nbs": regime.nbs} if regime.nbs else {})  # only when set: the other regimes' kept runs keep their keys
    run.update(regime.train_args)
    labels = [f"{out}-{name}-" + re.sub(r"[^\w.@-]+", "_", m[0]) for m in methods]
    baselines = 2 if lowres else 1

    def job(m: int, s: int) -> dict[str, Any]:
        extra = dict(methods[m][2])
        if "ensemble" in extra:  # a candidate's `ensemble=cfg`: the regime's teacher and cfg's together
            extra["teacher"] = f"[{t_pt},{teacher_of(extra.pop('ensemble'), train=False)}]"
        return {**dict(method=methods[m][1], model=student, data=data, teacher=t_pt, name=f"{labels[m]}-s{s}",
                       seed=s, **run), **extra}  # fmt: skip

    teacher = before.get("teacher", {})
    if args.kept_only:  # train nothing: the rows with a run not kept are left out
        kept = [all(common.is_kept(threads=1, **job(m, s)) for s in seeds) for m in range(len(labels))]
        # the teacher: as tabulated before, or validated below where it is on disk (a regime new to suite.json)
        if not all(kept[:baselines]) or ("checkpoint" not in teacher and not t_pt.is_file()):
            raise SystemExit(f"--kept-only: the baselines or the teacher of regime '{name}' were never measured")
        methods, labels = ([x for x, k in zip(v, kept) if k] for v in (methods, labels))
    # the students first (every row pairs with them), then row by row: a run cut short leaves whole rows behind
    order = [(s, m) for s in seeds for m in range(baselines)]
    order += [(s, m) for m in range(baselines, len(methods)) for s in seeds]
    jobs = [job(m, s) for s, m in order]
    all_kept = all(common.is_kept(threads=1, **j) for j in jobs)
    # --kept-only never trains, not even an ensemble's second teacher or the pretrained student: kept runs need neither
    if not args.kept_only and (not all_kept or teacher.get("checkpoint") != str(t_pt)):
        for cfg in [regime.teacher, *{m[2]["ensemble"] for m in methods if "ensemble" in m[2]}]:
            teacher_of(cfg)
        if regime.pretrained_on:
            trained(regime.student, source, regime.pretrained_epochs, full, regime.batch, args.device)
    if t_pt.is_file():  # validated wherever it is here: retrained since the last tabulation, its figures change
        shared = dict(imgsz=full, batch=regime.batch, device=args.device, workers=0)
        teacher = {"model": regime.teacher, "epochs": regime.teacher_epochs, "imgsz": full, "checkpoint": str(t_pt),
                   "weights_sha256": common.weights_sha256(t_pt), **common.validate(t_pt, data, shared)}  # fmt: skip
    # else every run is kept and the teacher is no longer cached here: the regime is tabulated again from the kept
    # runs and the teacher's figures as measured before (e.g. after the default changed), without training it again
    results = dict(zip((j["name"] for j in jobs), train_all(jobs, args.workers)))
    rows = []
    for label, (method, _, extra, is_default) in zip(labels, methods):
        runs = [{"seed": s, **results[f"{label}-s{s}"]} for s in seeds]
        rows.append(row(method, is_default, runs, **({"dis": extra["dis"]} if "dis" in extra else {})))
        rows[-1]["ablation"] = method.partition(":")[2] in set(ablations) - set(candidates)
        rows[-1]["plateau"] = plateau(runs)
        ratios = [r["distill_to_detection"][0] for r in runs if r.get("distill_to_detection")]
        # how large distillation is against the detection loss in the first epoch: what `balance` sets
        rows[-1]["distill_to_detection_first_epoch"] = sum(ratios) / len(ratios) if ratios else None
    reference = rows[1]["map50_95_mean"] if lowres else teacher["map50_95"]
    for r in rows[baselines:]:
        r["gap_recovery"] = gap_recovery(r["map50_95_mean"], rows[0]["map50_95_mean"], reference)
        r.update(paired(r["per_seed"], rows[0]["per_seed"]))
    settings = {**dataclasses.asdict(regime), "student": student, "seeds": seeds}
    print(f"{name}: teacher {teacher['map50_95']:.4f}, reference {reference:.4f}\n{table(rows)}")
    return {"settings": settings, "teacher": teacher, "reference_map50_95": reference,
            "student_plateau": rows[0]["plateau"], "rows": rows}  # fmt: skip


def main() -> None:
    args = parse_args()
    start = time.monotonic()
    out = args.out or common.result_name("suite", args.quick)
    names = args.regimes or (["scratch", "pretrained"] if args.quick else list(REGIMES))
    # the SCREEN regimes first: they pick the other regimes' candidates
    names = sorted(names, key=lambda n: n not in SCREEN.values())
    done = common.measured(out, "regimes")
    regimes = {name: with_changes(name, REGIMES[name], args.set) for name in names}
    if args.quick:
        regimes = {name: dataclasses.replace(regime, **QUICK) for name, regime in regimes.items()}

    def start_of(name: str) -> dict[str, Any]:  # the suite.json entries of the regimes of name's start, so far
        kind = student_start(regimes[name])
        return {n: e for n, e in done.items() if n in REGIMES and student_start(regimes.get(n, REGIMES[n])) == kind}

    def candidates(name: str) -> list[str]:
        if args.recipes is not None:
            return args.recipes
        kind = student_start(regimes[name])
        return screened(name, kind, CANDIDATES[kind], default_of(kind), start_of(name))

    pending, ran = names, {}
    while pending:  # a regime measured later may lower the default's worst GR: those before then get more candidates
        for name in pending:
            ran[name] = candidates(name)
            done[name] = measure(name, regimes[name], args, out, done.get(name, {}), ran[name])
            # after each regime: a suite cut short keeps what it finished (and its kept runs make the rest resume)
            # wall_s: this invocation's time (what --quick is budgeted by), kept runs read back, teachers cached or not
            write_json(
                out, {"mode": "quick" if args.quick else "full", "wall_s": time.monotonic() - start, "regimes": done}
            )
        pending = [name for name in names if candidates(name) != ran[name]]


if __name__ == "__main__":
    main()
