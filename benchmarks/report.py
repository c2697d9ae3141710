"""README tables generated from benchmarks/results/*.json, so that no figure is copied by hand.

    python benchmarks/report.py          # rewrites the README parts between <!-- NAME:start --> and <!-- NAME:end -->
    python benchmarks/report.py --check  # exit 1 when README differs from what the JSON gives (CI-friendly)

Generated parts: `suite` (from suite.json): per regime its settings and baselines, then method by regime — gap
recovery and paired gain ± se — each method's worst regime (the default is the method whose worst regime is best),
and the goal in each regime for the default (GR ≥ 40 %, ≥ 2× Ultralytics' built-in, paired gain > 2 se).
`tasks` (from tasks.json): per task its regime, the rows read on the task's own output, and the goal for each
yolodistill row (GR ≥ 40 % and above Ultralytics' built-in); `tasks_seeds` (tasks_seeds.json) the same for a close
call at more seeds, with each row's paired difference to the default.
`unlabeled` (from unlabeled.json): each run against the student on the labelled share, the share of the gap to all
labels it recovers, and the goal for the unlabelled images.
`demo` (from demo.json): what `yolodistill demo` printed and how long it took, from an empty cache and cached.
The benchmarks from before the suite: `regime` (regime.json: the student alone per schedule and the limits it meets),
`efficacy`, `efficacy_sweep`, `efficacy_quick`, `lowres`, `lowres_sweep` (their JSON's rows, as efficacy.py prints
them) and `overhead` (overhead.json: seconds per training step against the floor).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # suite.py beside it, wherever this is run from
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
GOAL_GR, GOAL_RATIO, GOAL_SE = 0.40, 2.0, 2.0
PLATEAU_AIM, GAP_AIM = 0.01, 0.10  # suite.PLATEAU_REGIMES' aims: the student's plateau, the teacher's lead over it
SUITE_BUDGET_H = 5  # the whole suite, teachers cached, in hours of this 2-core machine
QUICK_BUDGET_MIN = 15  # suite.py --quick, likewise
TASKS_SEEDS_COMMAND = (
    "python benchmarks/tasks.py --tasks obb --seeds 0 1 2 3 4 --recipes head_kd --task-losses --dis --out tasks_seeds"
)
SEEDS_COMMAND = (
    "python benchmarks/suite.py --regimes pretrained pretrained_long --recipes head_bckd_fg "
    "--seeds 0 1 2 3 4 --set ultralytics=false --out suite_seeds"
)
TASK_LEARNS = 0.2  # a task's regime: the student alone reaches this on its own metric, the teacher GAP_AIM above it
TASK_OUTPUT = {"seg": "mask", "pose": "pose", "box": "rotated-box"}  # tasks.json's `metric` → what the rows read


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _difference(runs: list[dict[str, Any]], base: list[dict[str, Any]]) -> tuple[float, float, str]:
    """The paired difference of per-seed runs to `base`'s: its mean, standard error and "+m ± se (> / under 2 se)"."""
    from common import paired

    d = paired(runs, base)
    mean, se = d["paired_gain_mean"], d["paired_gain_se"]
    return mean, se, f"{mean:+.4f} ± {se:.4f} ({'>' if abs(mean) > GOAL_SE * se else 'under'} 2 se)"


def _gain(r: dict[str, Any]) -> str:
    if r.get("paired_gain_mean") is None:
        return "–"
    se = r["paired_gain_se"]
    return f"{r['paired_gain_mean']:+.3f}" + ("" if se is None else f" ± {se:.3f}")


def _per_seed(r: dict[str, Any]) -> str:
    return " / ".join(f"{p['map50_95']:.3f}" for p in r["per_seed"])


def _name(r: dict[str, Any]) -> str:
    name = r["method"] + (f" dis={r['dis']:g}" if "dis" in r else "")
    return f"`{name}`"


def _is_default(r: dict[str, Any]) -> bool:
    """Whether a suite row is the default recipe's (Ultralytics' built-in row is flagged as its own default)."""
    return r["default"] and r["method"].startswith("yolodistill")


def goal(regime: dict[str, Any]) -> str:
    """Whether the default row meets the three goals in this regime, naming the ones it misses."""
    rows = regime["rows"]
    default = next((r for r in rows if _is_default(r)), None)
    if default is None:
        return "no default row"
    ours = default["gap_recovery"]
    missed = []
    if ours is None or ours < GOAL_GR:
        missed.append(f"GR {_pct(ours)} < 40 %")
    builtin = next((r for r in rows if r["method"].startswith("ultralytics")), None)
    builtin_gr = None if builtin is None else builtin["gap_recovery"]
    if builtin_gr is not None and ours is not None and ours < GOAL_RATIO * max(builtin_gr, 0.0):
        missed.append(f"not 2× the built-in's {_pct(builtin_gr)}")
    se = default.get("paired_gain_se")
    if se is None or default["paired_gain_mean"] <= GOAL_SE * se:
        missed.append("paired gain not > 2 se")
    return "met" if not missed else "missed: " + "; ".join(missed)


def suite_tables(result: dict[str, Any]) -> str:
    """The regimes (each of suite.REGIMES, measured or not), then method by regime."""
    from suite import PLATEAU_REGIMES, REGIMES

    regimes = {name: result["regimes"][name] for name in REGIMES if name in result["regimes"]}
    lines = [
        "| regime | setting | teacher mAP50-95 | student alone | GR reference | student plateau | default: goal |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, regime in REGIMES.items():
        if name not in regimes:
            lines.append(f"| `{name}` | {regime.about} | – | – | – | – | not measured yet |")
            continue
        reg = regimes[name]
        student = reg["rows"][0]
        plateau = reg.get("student_plateau")
        aim = ""  # `long`'s own aims: a plateaued student alone, the teacher ≥ 0.10 above it
        if name in PLATEAU_REGIMES and plateau is not None and plateau > PLATEAU_AIM:
            aim = f" (regime aim missed: plateau > {PLATEAU_AIM:g})"
        if name in PLATEAU_REGIMES and reg["teacher"]["map50_95"] - student["map50_95_mean"] < GAP_AIM:
            aim += f" (regime aim missed: teacher < {GAP_AIM:g} above the student)"
        lines.append(
            f"| `{name}` | {reg['settings']['about']} | {reg['teacher']['map50_95']:.3f} | "
            f"{student['map50_95_mean']:.3f} ± {student['map50_95_std']:.3f} | {reg['reference_map50_95']:.3f} | "
            f"{'–' if plateau is None else f'{plateau:+.3f}'}{aim} | {goal(reg)} |"
        )
    methods: dict[str, dict[str, dict[str, Any]]] = {}
    for name, reg in regimes.items():
        for r in reg["rows"]:
            if "paired_gain" in r:  # the distilled rows, not the baselines they are read against
                methods.setdefault(_name(r), {})[name] = r
    lines += ["", "| method | " + " | ".join(f"`{n}`" for n in regimes) + " | worst measured regime |",
              "|---|" + "---|" * (len(regimes) + 1)]  # fmt: skip
    for method, by_regime in methods.items():
        cells = [f"{_pct(by_regime[n]['gap_recovery'])} ({_gain(by_regime[n])})" if n in by_regime else "not run"
                 for n in regimes]  # fmt: skip
        measured = {n: r["gap_recovery"] for n, r in by_regime.items() if r["gap_recovery"] is not None}
        worst = min(measured, key=measured.get, default=None)
        note = "–" if worst is None else f"`{worst}` {_pct(measured[worst])}"
        note += "" if len(by_regime) == len(regimes) else " (of those it ran in)"
        default = ", ".join(f"`{n}`" for n, r in by_regime.items() if _is_default(r))
        ablation = all(r.get("ablation") for r in by_regime.values())
        tag = f" *default in {default}*" if default else " (ablation)" if ablation else ""
        lines.append(f"| {method}{tag} | " + " | ".join(cells) + f" | {note} |")
    return "\n".join(lines + _leaders(methods) + [_cost(regimes)])


def _cost(regimes: dict[str, dict[str, Any]]) -> str:
    """The suite's training time, each run counted once (a run two regimes share, e.g. `scratch`'s student in
    `cross_family`, has the same figures in both), against the budget; the ablation rows (`--ablations`) apart, as they
    are beyond it; not the teachers (trained once, cached)."""
    runs = {False: set(), True: set()}
    by_regime = {}  # a regime's share of the budgeted runs: those not counted in a regime before it
    for name, reg in regimes.items():
        before = sum(t for _, t in runs[False])
        for r in reg["rows"]:
            runs[bool(r.get("ablation"))] |= {(p["map50_95"], p["time_s"]) for p in r["per_seed"]}
        by_regime[name] = (sum(t for _, t in runs[False]) - before) / 3600
    hours = {k: sum(t for _, t in v) / 3600 for k, v in runs.items()}
    shares = ", ".join(f"`{n}` {h:.1f} h" for n, h in by_regime.items())
    line = (
        f"Cost of the suite's runs above: {len(runs[False])} runs, {hours[False]:.1f} h of one-thread training "
        f"({shares}), about {hours[False] / 2:.1f} h of this 2-core machine with two side by side "
        f"(budget: {SUITE_BUDGET_H:g} h{'; over it' if hours[False] / 2 > SUITE_BUDGET_H else ''})."
    )
    if runs[True]:
        line += f" The ablation rows (`--ablations`, beyond the budget): {len(runs[True])} runs, "
        line += f"{hours[True]:.1f} h more of one-thread training."
    return line


def _leaders(methods: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """For each yolodistill default: of the methods run in every regime it is the default of, the one whose worst GR
    there is best (the rule the default is chosen by, read on the regimes measured so far)."""
    lines = [""]
    for name, by_regime in methods.items():
        ours = [n for n, r in by_regime.items() if _is_default(r)]
        if not ours:
            continue
        rivals = {
            m: min(rows[n]["gap_recovery"] for n in ours)
            for m, rows in methods.items()
            if "yolodistill" in m and set(ours) <= set(rows) and all(rows[n]["gap_recovery"] is not None for n in ours)
        }
        if not rivals:  # no run of those regimes has a GR (a teacher no better than the student)
            continue
        best = max(rivals, key=rivals.get)
        regimes = ", ".join(f"`{n}`" for n in ours)
        line = (f"Best worst regime so far among the methods run wherever {name} is the default ({regimes}): "
                f"{best}, worst GR {_pct(rivals[best])}")  # fmt: skip
        worst = min(ours, key=lambda n: by_regime[n]["gap_recovery"])  # the default's
        if best != name and min(ours, key=lambda n: methods[best][n]["gap_recovery"]) == worst:
            from common import paired

            # GRs three seeds apart can differ by noise alone: the paired difference there says whether they do
            d = paired(methods[best][worst]["per_seed"], by_regime[worst]["per_seed"])
            line += f"; against the default in that regime, `{worst}`, paired {_gain(d)}"
            if d["paired_gain_se"] is not None and abs(d["paired_gain_mean"]) <= GOAL_SE * d["paired_gain_se"]:
                line += f" (within {GOAL_SE:g} standard errors: not beyond noise)"
        lines.append(line + ".  ")
    return lines


def seeds_tables(result: dict[str, Any]) -> str:
    """A close call at more seeds (`suite.py --seeds ... --out suite_seeds`): per regime, each row's GR, paired gain
    over the student and paired difference to the default (per seed, then mean ± se), and whether that difference
    exceeds 2 se; then the method whose worst GR over these regimes is best, and whether it beats the default by
    > 2 se in the regime of the default's worst GR (else a tie, which goes to the default as the simpler)."""
    regimes = result["regimes"]
    lines, diffs = [], {}
    for name, reg in regimes.items():
        rows = reg["rows"]
        default = next(r for r in rows if _is_default(r))
        lines += [f"**`{name}`** ({reg['settings']['about']}; seeds {', '.join(map(str, reg['settings']['seeds']))}):",
                  "", "| run | mAP50-95 per seed | GR | paired gain ± se | paired difference to the default ± se |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for r in rows:
            cell = "–"
            if "paired_gain" in r and r is not default:
                mean, se, cell = _difference(r["per_seed"], default["per_seed"])
                diffs.setdefault(r["method"], {})[name] = mean > GOAL_SE * se
            tag = " *default*" if r is default else ""
            lines.append(f"| {_name(r)}{tag} | {_per_seed(r)} | {_pct(r['gap_recovery'])} | {_gain(r)} | {cell} |")
        lines.append("")
    worst: dict[str, tuple[float, str]] = {}  # per method: its worst GR and the regime it is in
    for name, reg in regimes.items():
        for r in reg["rows"]:
            gr = r.get("gap_recovery")
            if gr is not None and gr < worst.get(r["method"], (math.inf, ""))[0]:
                worst[r["method"]] = (gr, name)
    best = max(worst, key=lambda m: worst[m][0])
    line = f"Best worst GR over these regimes: `{best}` ({_pct(worst[best][0])})"
    if best in diffs:  # not the default: is its worst better beyond noise, where the default's worst is?
        at = worst[default["method"]][1]  # the default is one recipe in every regime: the last loop's row names it
        wins = diffs[best].get(at, False)
        verdict = "ahead of the default by > 2 se: it replaces the default" if wins else (
            "not ahead of the default by > 2 se: a tie, which goes to the default")  # fmt: skip
        line += f"; in `{at}`, the default's worst regime, it is {verdict}"
    lines.append(line + ".")
    return "\n".join(lines)


def task_tables(result: dict[str, Any], every_task: bool = True, screen: dict[str, Any] | None = None) -> str:
    """tasks.py's tasks (each of tasks.TASKS, measured or not; `every_task` False: those in `result` only): the regime,
    a row per run on the task's own mAP50-95 with the box mAP50-95 beside it, whether the regime lets the student
    learn, and the goal of each yolodistill row; with more than 3 seeds (a close call, `--seeds`) also each row's
    paired difference to the default, and again without the seeds of `screen` (a tasks.py result whose seeds picked
    the recipe: the others are unbiased by that choice). *default* marks today's default recipe (a task measured under
    an earlier default says so)."""
    from common import gap_recovery
    from tasks import TASKS

    from yolodistill.recipes import default_recipe

    lines = []
    for task in TASKS if every_task else list(result["tasks"]):
        default = f"yolodistill:{default_recipe(pretrained=False, task=task)}"  # tasks.py's students: from scratch
        if task not in result["tasks"]:
            lines += [f"**{task}**: not measured yet (`python benchmarks/tasks.py --tasks {task}`).", ""]
            continue
        t = result["tasks"][task]
        s, teacher, rows = t["settings"], t["teacher"], t["rows"]
        output = TASK_OUTPUT[t["metric"]]
        box = "box_map50_95" in teacher
        lines += [
            f"**{task}** ({output} mAP50-95): `{teacher['model']}` teacher, {teacher['epochs']} epochs, "
            f"{teacher['map50_95']:.3f}" + (f" (boxes {teacher['box_map50_95']:.3f})" if box else "")
            + f"; students {s['epochs']} epochs at {s['imgsz']} px, batch {s['batch']}, seeds "
            f"{', '.join(map(str, s['seeds']))}." + (f" Rows of `{t['command']}`." if "command" in t else ""),
            "",
            f"| run | {output} mAP50-95 per seed | {output} mAP50-95 | paired gain ± se | GR |"
            + (" box mAP50-95 |" if box else ""),
            "|---|---|---|---|---|" + ("---|" if box else ""),
        ]  # fmt: skip
        for r in rows:
            cells = [
                _name(r) + (" *default*" if r["method"] == default else ""),
                _per_seed(r),
                f"{r['map50_95_mean']:.3f} ± {r['map50_95_std']:.3f}",
                _gain(r),
                _pct(r["gap_recovery"]),
            ]
            cells += [f"{r['box_map50_95_mean']:.3f}"] if box else []
            lines.append("| " + " | ".join(cells) + " |")
        student = rows[0]["map50_95_mean"]
        regime = []
        if student < TASK_LEARNS:
            regime.append(f"the student alone < {TASK_LEARNS:g}")
        if teacher["map50_95"] - student < GAP_AIM:
            regime.append(f"the teacher < {GAP_AIM:g} above the student")
        lines += ["", "Regime: " + ("the student learns and the teacher is ≥ 0.1 above it" if not regime
                                    else "aim missed: " + "; ".join(regime)) + "."]  # fmt: skip
        if not any(r["method"] == default for r in rows):
            then = next((_name(r) for r in rows if r["default"]), "another recipe")
            lines.append(f"Today's default `{default}` is not measured on this task yet ({then} was the default when "
                         f"it was): `python benchmarks/tasks.py --tasks {task}`.  ")  # fmt: skip
        builtin = next((r["gap_recovery"] for r in rows if r["method"].startswith("ultralytics")), None)
        for r in rows:
            if not r["method"].startswith("yolodistill"):
                continue
            gr, missed = r["gap_recovery"], []
            if gr is None or gr < GOAL_GR:
                missed.append(f"GR {_pct(gr)} < 40 %")
            if builtin is not None and (gr is None or gr <= builtin):
                missed.append(f"not above the built-in's {_pct(builtin)}")
            lines.append(f"Goal, {_name(r)}: " + ("met" if not missed else "missed: " + "; ".join(missed)) + ".  ")
        base = next((r for r in rows if r["method"] == default), None)
        if len(s["seeds"]) > 3 and base is not None:
            picked = set(screen["tasks"][task]["settings"]["seeds"]) if screen and task in screen["tasks"] else set()
            for r in rows:
                if not r["method"].startswith("yolodistill") or r is base:
                    continue
                for skip in [set(), picked] if picked else [set()]:
                    *_, text = _difference([x for x in r["per_seed"] if x["seed"] not in skip],
                                           [x for x in base["per_seed"] if x["seed"] not in skip])  # fmt: skip
                    without = f" without seed {', '.join(map(str, sorted(skip)))} (the screen's)" if skip else ""
                    lines.append(f"Paired difference of {_name(r)} to the default{without}: {text}.  ")
            if picked:
                ps = [[x["map50_95"] for x in r["per_seed"] if x["seed"] not in picked] for r in (rows[0], base)]
                gr = gap_recovery(sum(ps[1]) / len(ps[1]), sum(ps[0]) / len(ps[0]), teacher["map50_95"])
                lines.append(f"GR of the default without seed {', '.join(map(str, sorted(picked)))}: {_pct(gr)}.  ")
        lines.append("")
    return "\n".join(lines).rstrip()


def _few_epochs(settings: dict[str, Any]) -> str:
    """How long the runs on the labelled share train, where it is not `epochs` (unlabeled.py --steps-matched)."""
    few = settings.get("labelled_share_epochs", settings["epochs"])
    return "" if few == settings["epochs"] else f" ({few} on the labelled share: as many steps as on all labels)"


def unlabeled_table(result: dict[str, Any]) -> str:
    """unlabeled.py's rows: each against the student on the labelled share alone, the share of the gap to the student
    on all labels it recovers, and (`+ unlabeled` rows) against distilling on the labelled share alone; then the goal
    (the unlabelled images recover ≥ 50 % with the teacher of the labelled share, and add a paired gain > 2 se)."""
    s = result["settings"]
    teachers = ", ".join(f"{k} {v['map50_95']:.3f}" for k, v in result["teachers"].items())
    lines = [
        f"{s['labelled_images']} labelled and {s['unlabeled_images']} unlabelled images of `{s['data']}`, "
        f"{s['epochs']} epochs at {s['imgsz']} px{_few_epochs(s)}, batch {s['batch']}, "
        f"unlabeled_ratio {s['unlabeled_ratio']:g}, "
        f"seeds {', '.join(map(str, s['seeds']))}; teachers' mAP50-95: {teachers}.",
        "",
        "| run | mAP50-95 per seed | mAP50-95 | paired gain over the student on the labelled share | share of the gap "
        "to all labels | paired gain over distilling on the labelled share alone |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        over = _gain(r["over_labelled_only"]) if "over_labelled_only" in r else "–"
        lines.append(
            f"| {r['method']} | {_per_seed(r)} | {r['map50_95_mean']:.3f} ± {r['map50_95_std']:.3f} | {_gain(r)} | "
            f"{_pct(r['gap_recovery'])} | {over} |"
        )
    target = next(r for r in result["rows"] if "over_labelled_only" in r)  # the labelled share's teacher comes first
    missed = []
    if target["gap_recovery"] is None or target["gap_recovery"] < 0.5:
        missed.append(f"{_pct(target['gap_recovery'])} of the gap < 50 %")
    over = target["over_labelled_only"]
    if over["paired_gain_se"] is None or over["paired_gain_mean"] <= GOAL_SE * over["paired_gain_se"]:
        missed.append("gain over distilling on the labelled share alone not > 2 se")
    lines += [
        "",
        "Goal (the labelled share's teacher): " + ("met" if not missed else "missed: " + "; ".join(missed)) + ".",
    ]
    teacher = target["method"].rpartition(", ")[2]
    ratios = sorted(((r["unlabeled_ratio"], r) for r in result["rows"] if "over_labelled_only" in r
                     and r["method"].endswith(teacher) and not r.get("pseudo")), key=lambda p: p[0])  # fmt: skip
    if len(ratios) > 1:  # the ratio sweep: each ratio's mAP50-95 and its gain over distilling on the labelled share
        cells = [f"{x:g}{' (default)' if r is target else ''} → {r['map50_95_mean']:.3f}, "
                 f"{_gain(r['over_labelled_only'])}" for x, r in ratios]  # fmt: skip
        lines += ["", "unlabeled_ratio with the labelled share's teacher: " + "; ".join(cells) + "."]
    return "\n".join(lines)


def _minutes(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s"


def demo_section(result: dict[str, Any]) -> str:
    """`yolodistill demo` as benchmarks/demo.py ran it: settings, both wall times, the table and its gap recovery."""
    s, runs = result["settings"], {r["cache"]: r for r in result["runs"]}
    table = runs["cached"]["table"]
    t, st, d = (v["mAP50-95"] for v in table.values())
    same = runs["empty"]["table"] == table
    rows = "\n".join(f"| {k} | {v['mAP50']:.3f} | {v['mAP50-95']:.3f} |" for k, v in table.items())
    m, teacher, student = result["machine"], Path(s["teacher"]).stem, Path(s["student"]).stem
    return (f"`python benchmarks/demo.py` (`benchmarks/results/demo.json`): `yolodistill demo` with its defaults — "
            f"`{s['data']}`, a {teacher} teacher ({s['teacher_epochs']} epochs), {student} students {s['epochs']} "
            f"epochs from scratch at {s['imgsz']} px, batch {s['batch']}, seed {s['seed']}, recipe `{s['recipe']}`, "
            f"torch on {s['threads']} threads ({m['processor']}, {m['cpu_count']} cores) — took "
            f"**{_minutes(runs['empty']['wall_s'])}** from an empty cache (dataset generation and teacher training "
            f"included) and **{_minutes(runs['cached']['wall_s'])}** with both cached. Picture: "
            f"`benchmarks/results/demo.png` (the demo's own `demo.png`).\n\n"
            f"| model | mAP50 | mAP50-95 |\n| --- | --- | --- |\n{rows}\n\n"
            f"Gap recovery {(d - st) / (t - st) if t != st else float('nan'):.2f} on one seed"
            + ("; the run from an empty cache printed the same table." if same else
               "; the run from an empty cache printed other figures (demo.json has both)."))  # fmt: skip


def rows_table(result: dict[str, Any]) -> str:
    """efficacy.py's and lowres.py's rows (efficacy*.json, lowres*.json): the command and its regime, then per method
    mAP50-95 per seed and mean ± std, the paired gain ± se over the student of the same seed (and resolution), mAP50
    and GR. *default then* marks the rows that were the defaults when the file was written."""
    s, t = result["settings"], result["teacher"]
    sizes = sorted({r.get("imgsz", s["imgsz"]) for r in result["rows"]})
    lines = [
        f"`{result['command']}`: `{s['data']}`, {t['model']} teacher {t['epochs']} epochs at {t['imgsz']} px, "
        f"mAP50-95 {t['map50_95']:.3f} (mAP50 {t['map50']:.3f}); students {s['epochs']} epochs from scratch at "
        f"{' and '.join(f'{x} px' for x in sizes)}, batch {s['batch']}, seeds {', '.join(map(str, s['seeds']))}.",
        "",
        "| method | mAP50-95 per seed | mAP50-95 | paired gain ± se | mAP50 | GR |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {_name(r)}{' *default then*' if _is_default(r) else ''} | {_per_seed(r)} | "
                     f"{r['map50_95_mean']:.3f} ± {r['map50_95_std']:.3f} | {_gain(r)} | "
                     f"{r['map50_mean']:.3f} ± {r['map50_std']:.3f} | {_pct(r['gap_recovery'])} |")  # fmt: skip
    return "\n".join(lines)


def regime_table(result: dict[str, Any]) -> str:
    """regime.py's schedules: the student alone per seed, mean ± std, the teacher's lead, and which limits it meets."""
    c, t = result["criteria"], result["teacher"]
    lines = [
        f"`{result['command']}`: teacher {t['model']} {t['epochs']} epochs, mAP50-95 {t['map50_95']:.3f}; limits: "
        f"student mean ≥ {c['student_mean_min']:g}, std ≤ {c['student_std_max']:g}, teacher ≥ "
        f"{c['teacher_gap_min']:g} above the student.",
        "",
        "| schedule | student mAP50-95 per seed | mean ± std | teacher − student | meets the limits |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        misses = [m for m, bad in ((f"mean < {c['student_mean_min']:g}", r["map50_95_mean"] < c["student_mean_min"]),
                                   (f"std > {c['student_std_max']:g}", r["map50_95_std"] > c["student_std_max"]),
                                   (f"gap < {c['teacher_gap_min']:g}", r["teacher_gap"] < c["teacher_gap_min"]))
                  if bad]  # fmt: skip
        lines.append(f"| {r['schedule']} | {_per_seed(r)} | {r['map50_95_mean']:.3f} ± {r['map50_95_std']:.3f} | "
                     f"{r['teacher_gap']:.2f} | {'yes' if r['meets'] else 'no: ' + ', '.join(misses)} |")  # fmt: skip
    return "\n".join(lines)


def overhead_table(result: dict[str, Any]) -> str:
    """overhead.py's variants: median seconds per training step and the ratio to the floor (the student's step plus
    the teacher's full forward), with the settings they were timed in."""
    s = result["settings"]
    lines = [
        f"`{result['command']}` ({_minutes(result['runtime_s'])}): {s['device'].upper()}, "
        f"{Path(s['teacher']).stem} → {Path(s['student']).stem}, imgsz {s['imgsz']}, batch {s['batch']}; median of "
        f"{s['iters']} timed steps after {s['warmup']} warm-up steps, variants interleaved on the same batches.",
        "",
        "| method | s / step (median) | × floor |",
        "|---|---|---|",
    ]
    for r in result["rows"]:
        name = _name(r) + (" *default then*" if _is_default(r) else "")
        lines.append(f"| {name} | {r['step_s']:.3f} | {r['ratio_to_floor']:.3f} |")
    return "\n".join(lines)


def _from(name: str, make: Any, command: str | None = None) -> Any:
    """The generator of one part: `make` of benchmarks/results/<name>.json, or a line saying how to measure it
    (`command`, by default `python benchmarks/<name>.py`)."""

    def generate() -> str:
        path = RESULTS / f"{name}.json"
        if not path.is_file():
            run = command or f"python benchmarks/{name}.py"
            return f"Not measured yet: run `{run}`, then `python benchmarks/report.py`."
        return make(json.loads(path.read_text()))

    return generate


def _screen() -> dict[str, Any] | None:
    """tasks_obb_screen.json (the one-seed screen that picked the OBB default), where it is."""
    path = RESULTS / "tasks_obb_screen.json"
    return json.loads(path.read_text()) if path.is_file() else None


def quick_line(result: dict[str, Any]) -> str:
    """`suite.py --quick`'s wall time against its budget, and the default's paired gain in each regime it ran."""
    regimes = result["regimes"]
    gains = []
    for name, reg in regimes.items():
        default = next(r for r in reg["rows"] if _is_default(r))
        gains.append(f"`{name}` {_name(default)} {_gain(default)}")
    epochs = {reg["settings"]["epochs"] for reg in regimes.values()}.pop()  # --quick sets one for all
    minutes = result["wall_s"] / 60
    return (f"`python benchmarks/suite.py --quick` (1 seed, {epochs} epochs, the student and the "
            f"default; `benchmarks/results/suite_quick.json`) took {minutes:.1f} min (budget: {QUICK_BUDGET_MIN} "
            f"min), paired gain {'; '.join(gains)}: a smoke test of the suite, not a measurement.")  # fmt: skip


GENERATORS = {
    "suite": _from("suite", suite_tables),
    "suite_quick": _from("suite_quick", quick_line, "python benchmarks/suite.py --quick"),
    "suite_seeds": _from("suite_seeds", seeds_tables, SEEDS_COMMAND),
    "tasks": _from("tasks", task_tables),
    "tasks_seeds": _from("tasks_seeds", lambda r: task_tables(r, False, _screen()), TASKS_SEEDS_COMMAND),
    "demo": _from("demo", demo_section),
    "regime": _from("regime", regime_table),
    "efficacy": _from("efficacy", rows_table),
    "efficacy_sweep": _from("efficacy_sweep", rows_table, "python benchmarks/efficacy.py --out efficacy_sweep"),
    "efficacy_quick": _from("efficacy_quick", rows_table, "python benchmarks/efficacy.py --quick"),
    "lowres": _from("lowres", rows_table),
    "lowres_sweep": _from("lowres_sweep", rows_table, "python benchmarks/lowres.py --out lowres_sweep"),
    "overhead": _from("overhead", overhead_table, "python benchmarks/overhead.py --quick"),
    "unlabeled": _from("unlabeled", unlabeled_table),
    "unlabeled_steps": _from(
        "unlabeled_steps", unlabeled_table, "python benchmarks/unlabeled.py --steps-matched --cases few --ratios"
    ),
}


def render(readme: str) -> str:
    """`readme` with every generated part replaced by what its JSON gives now."""
    for name, make in GENERATORS.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)  # empty between, too
        if pattern.search(readme):
            text = make()
            readme = pattern.sub(lambda m, text=text: m.group(1) + text + "\n" + m.group(2), readme)
    return readme


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true")
    args = p.parse_args()
    before = README.read_text()
    after = render(before)
    if args.check:
        sys.exit(0 if after == before else 1)
    README.write_text(after)


if __name__ == "__main__":
    main()
