"""What unlabelled images are worth: `unlabeled=` against distilling on the labelled images alone.

On the built-in `shapes` preset the labels of the first 10 % of the training images are kept (a copy of those images
and labels, with the validation split as it is); the other 90 % are given as `unlabeled=` (a .txt list of their
paths). Every student is the YOLOv8n pretrained with plain Ultralytics on the `synthetic` preset (other classes; the
suite's `pretrained` student), fine-tuned as users fine-tune `yolov8n.pt`. Per seed, with one schedule (the same
epochs, so the same steps per epoch on the 10 %):

- the student on the 10 % alone, and the student on all labels (the ceiling);
- for each teacher, distilled on the 10 % (the default recipe), and distilled on the 10 % plus the unlabelled 90 %;
- with the teacher of the 10 %, the unlabelled rows at other `unlabeled_ratio` values (`--ratios`) and with
  pseudo-labels (`--pseudo` weights, `--pseudo-conf` thresholds: `pseudo=`, losses.PseudoLabelLoss).

The teachers: a YOLOv8s pretrained on `synthetic` (30 epochs, as the student) and fine-tuned on the same 10 % (100
epochs: a bigger model on the same labels), and the suite's YOLOv8s trained from scratch on all labels (50 epochs:
above the student on the 10 %, below the pretrained student on all labels). Each distilled row is read
by its paired gain over the student on the 10 % and by the share of the gap from "10 % labels" to "all labels" it
recovers, R = (mAP − mAP_10%) / (mAP_all − mAP_10%); each `+ unlabeled` row also by its paired gain over the
distilled row on the 10 % alone with the same teacher. Validation only after the last epoch (`val=False`: best.pt is
the last), two trainings side by side, one torch thread each; finished runs are kept (`common.train`), so a cut-off
run continues.

    python benchmarks/unlabeled.py --quick   # 1 seed, 3 epochs: a smoke test
    python benchmarks/unlabeled.py           # 3 seeds
    python benchmarks/unlabeled.py --cases all --workers 1   # only the all-labels teacher's rows (and the students')
    python benchmarks/unlabeled.py --steps-matched --cases few --ratios   # equal steps: unlabeled_steps.json

With `--steps-matched` the runs on the labelled share train as many optimizer steps as the student on all labels
(epochs × its batches an epoch / theirs: 10 × the epochs for 10 %), so that a gap is not a count of training steps;
the teacher of the labelled share trains at least as many epochs as they do.

Writes benchmarks/results/unlabeled.json (unlabeled_steps.json with --steps-matched, _quick with --quick);
`python benchmarks/report.py` puts its table in README.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
from pathlib import Path
from typing import Any

import common
import yaml
from common import gap_recovery, paired, row, table, train_all, trained, write_json


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--data", default="shapes", help="data yaml or datasets.yaml name")
    p.add_argument("--labelled", type=float, default=0.1, help="share of the train images whose labels are kept")
    p.add_argument("--pretrain-data", default="synthetic", help="where students and the 10 %% teacher start from")
    p.add_argument("--pretrain-epochs", type=int, default=30, help="the student's (the suite's pretrained student)")
    p.add_argument(
        "--teacher-pretrain-epochs",
        type=int,
        default=30,
        help="as the student's (a teacher below the student teaches nothing)",
    )
    p.add_argument("--teacher", default="yolov8s.yaml")
    p.add_argument("--teacher-epochs", type=int, default=100, help="the 10 %% teacher's fine-tuning")
    p.add_argument("--full-teacher-epochs", type=int, default=50, help="the all-labels teacher (the suite's)")
    p.add_argument("--cases", nargs="+", choices=("few", "all"), default=["few", "all"],
                   help="teachers to run: trained on the labelled share, on all labels")  # fmt: skip
    p.add_argument("--student", default="yolov8n.yaml")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--steps-matched", action="store_true", help="labelled-share runs: the all-labels run's steps")
    p.add_argument("--ratio", type=float, default=None, help="unlabeled_ratio (default: yolodistill's default)")
    p.add_argument("--ratios", type=float, nargs="*", default=[0.5, 2.0],
                   help="other unlabeled_ratio values, each a row with the labelled share's teacher")  # fmt: skip
    p.add_argument("--pseudo", type=float, nargs="*", default=[1.0],
                   help="pseudo weights, each a row with pseudo-labels on the unlabelled images")  # fmt: skip
    p.add_argument("--pseudo-conf", type=float, nargs="*", default=[],
                   help="other pseudo_conf values, each a row with the first --pseudo weight")  # fmt: skip
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--workers", type=int, default=2, help="trainings side by side, one torch thread each")
    p.add_argument("--out", default=None, help="name of the JSON in benchmarks/results/ (unlabeled[_quick])")
    return p.parse_args()


def split(data: str, share: float, where: Path) -> tuple[Path, Path, int, int]:
    """A data yaml over a copy of the first `share` of `data`'s training images with their labels (validation as it
    is), and a .txt list of the other training images; with both counts. Made once: an existing split of the same images
    is left as it is (a second benchmark process may be training on it)."""
    from ultralytics.data.utils import check_det_dataset, img2label_paths

    info = check_det_dataset(data)
    images = sorted(p for p in Path(info["train"]).rglob("*") if p.suffix.lower() in {".jpg", ".png"})
    n = round(share * len(images))
    pool = "".join(f"{p}\n" for p in images[n:])
    done = where / "data.yaml"
    if done.is_file() and (where / "unlabeled.txt").read_text() == pool:
        return done, where / "unlabeled.txt", n, len(images) - n
    for sub in ("images", "labels"):
        shutil.rmtree(where / sub, ignore_errors=True)
        (where / sub / "train").mkdir(parents=True)
    for image, label in zip(images[:n], img2label_paths([str(p) for p in images[:n]])):
        shutil.copy(image, where / "images" / "train")
        if Path(label).is_file():
            shutil.copy(label, where / "labels" / "train")
    (where / "unlabeled.txt").write_text(pool)
    labelled = {"path": str(where), "train": "images/train", "val": str(info["val"]), "names": info["names"]}
    done.write_text(yaml.safe_dump(labelled, sort_keys=False))  # last: a cut-off split is made again
    return done, where / "unlabeled.txt", n, len(images) - n


def matched_epochs(epochs: int, n_all: int, n_few: int, batch: int) -> int:
    """Epochs on `n_few` images that take as many optimizer steps as `epochs` on `n_all` (--steps-matched: the runs on
    the labelled share, with fewer batches an epoch, are then not short of training steps)."""
    return round(epochs * math.ceil(n_all / batch) / math.ceil(n_few / batch))


def main() -> None:
    from yolodistill.data import resolve_data
    from yolodistill.demo import teacher_checkpoint
    from yolodistill.unlabeled import UNLABELED_RATIO

    args = parse_args()
    if args.quick:
        args.epochs, args.teacher_epochs = 3, 3
    out = args.out or common.result_name("unlabeled_steps" if args.steps_matched else "unlabeled", args.quick)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    ratio = UNLABELED_RATIO if args.ratio is None else args.ratio
    data = resolve_data(args.data)
    # the split (so the teacher of the labelled share and every run's data path) is that of the run without
    # --steps-matched: both read the same kept teacher and runs
    base = args.out or common.result_name("unlabeled", args.quick)
    few, pool, n_labelled, n_unlabelled = split(data, args.labelled, common.CACHE / f"{base}-split")
    shared = dict(imgsz=args.imgsz, batch=args.batch, device=args.device, workers=0)
    few_epochs = matched_epochs(args.epochs, n_labelled + n_unlabelled, n_labelled, args.batch)
    few_epochs = few_epochs if args.steps_matched else args.epochs
    # at equal steps the student on the labelled share alone learns far more, so the teacher of that share trains
    # as long as the students (at least): a teacher below the student teaches nothing
    teacher_epochs = max(args.teacher_epochs, few_epochs)
    source = resolve_data(args.pretrain_data)
    student = str(trained(args.student, source, args.pretrain_epochs, args.imgsz, args.batch, args.device))
    share = f"{100 * args.labelled:g} % labels"
    teachers = {}
    if "few" in args.cases:
        base = trained(args.teacher, source, args.teacher_pretrain_epochs, args.imgsz, args.batch, args.device)
        teachers[share] = teacher_checkpoint(str(base), str(few), teacher_epochs, seed=0, **shared)
    if "all" in args.cases:
        teachers["all labels"] = trained(args.teacher, data, args.full_teacher_epochs, args.imgsz, args.batch,
                                         args.device)  # fmt: skip
    teacher_info = {k: {"checkpoint": str(t), **common.validate(t, data, shared)} for k, t in teachers.items()}

    # (row name, method, its train args, the row it is also paired with): every row pairs with the student on the
    # labelled share of the same seed; a `+ unlabeled` row also with distilling on the labelled share alone
    methods: list[tuple[str, str, dict[str, Any], str | None]] = [
        (f"student, {share}", "student", {"data": str(few)}, None),
        ("student, all labels", "student", {"data": data}, None),
    ]
    sweep = []  # other ratios, with the labelled share's teacher (the goal's case): run after every default row
    for name, t in teachers.items():
        alone = f"distilled, {name} teacher"
        methods.append((alone, "yolodistill", {"data": str(few), "teacher": t}, None))
        for r in [ratio] + ([x for x in args.ratios if x != ratio] if name == share else []):
            extra = {"data": str(few), "teacher": t, "unlabeled": str(pool), "unlabeled_ratio": r}
            with_pool = f"distilled + unlabeled{'' if r == ratio else f' ×{r:g}'}, {name} teacher"
            (methods if r == ratio else sweep).append((with_pool, "yolodistill", extra, alone))
        if name != share:
            continue
        pool_args = {"data": str(few), "teacher": t, "unlabeled": str(pool), "unlabeled_ratio": ratio}
        for w, conf in [(w, None) for w in args.pseudo] + [(args.pseudo[0], c) for c in args.pseudo_conf]:
            tag = f"pseudo-labels{'' if w == 1 else f' ×{w:g}'}{'' if conf is None else f' conf {conf:g}'}"
            extra = {**pool_args, "pseudo": w, **({} if conf is None else {"pseudo_conf": conf})}
            sweep.append((f"distilled + unlabeled + {tag}, {name} teacher", "yolodistill", extra, alone))
    run = dict(val=False, **shared)

    def label(name: str, seed: int) -> str:
        safe = re.sub(r"[^\w.-]+", "_", name)
        return f"{out}-{safe}-s{seed}"

    todo = [dict(method=m, model=student, name=label(name, s), seed=s, **run, **extra,
                 epochs=args.epochs if extra["data"] == data else few_epochs)
            for group in (methods, sweep) for s in seeds for name, m, extra, _ in group]  # fmt: skip
    results = dict(zip((j["name"] for j in todo), train_all(todo, args.workers)))
    rows = {name: row(name, False, [{"seed": s, **results[label(name, s)]} for s in seeds])
            for name, _, _, _ in methods + sweep}  # fmt: skip
    low, high = rows[f"student, {share}"], rows["student, all labels"]
    for name, _, extra, alone in (methods + sweep)[1:]:
        r = rows[name]
        r.update(paired(r["per_seed"], low["per_seed"]))
        r["gap_recovery"] = gap_recovery(r["map50_95_mean"], low["map50_95_mean"], high["map50_95_mean"])
        if alone is not None:
            r["over_labelled_only"] = paired(r["per_seed"], rows[alone]["per_seed"])
            r["unlabeled_ratio"] = extra["unlabeled_ratio"]
            r["pseudo"] = extra.get("pseudo", 0.0)
    rows = list(rows.values())
    settings = {**{k: v for k, v in vars(args).items() if k not in ("quick", "out", "workers")}, "seeds": seeds,
                "unlabeled_ratio": ratio, "labelled_images": n_labelled, "unlabeled_images": n_unlabelled,
                "labelled_share_epochs": few_epochs, "labelled_share_teacher_epochs": teacher_epochs,
                "student": student}  # fmt: skip
    print(table(rows))
    write_json(out, {"mode": "quick" if args.quick else "full", "settings": settings, "teachers": teacher_info,
                     "rows": rows})  # fmt: skip


if __name__ == "__main__":
    main()
