"""The benchmark scripts end to end at toy size (their figures are meaningless here; their arithmetic and output are
what is checked), and the helpers behind README's gap-recovery figures."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import IMGSZ

from yolodistill.recipes import DEFAULT_RECIPE, SCRATCH_RECIPE, load_recipe

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402
import report  # noqa: E402
import unlabeled  # noqa: E402


def test_gap_recovery_and_rows():
    assert common.gap_recovery(0.02, 0.01, 0.05) == pytest.approx(0.25)
    assert common.gap_recovery(0.005, 0.01, 0.05) == pytest.approx(-0.125)
    assert common.gap_recovery(0.02, 0.03, 0.03) is None  # no gap to recover
    runs = [{"seed": s, "map50": m50, "map50_95": m, "time_s": 1.0} for s, m50, m in [(0, 0.3, 0.1), (1, 0.5, 0.3)]]
    r = common.row("yolodistill:cwd", True, runs)
    assert (r["map50_95_mean"], r["map50_mean"], r["seeds"]) == (pytest.approx(0.2), pytest.approx(0.4), [0, 1])
    assert r["map50_95_std"] == pytest.approx(2**0.5 * 0.1)  # sample standard deviation


def test_paired_gain():
    student = [{"seed": 0, "map50_95": 0.30}, {"seed": 1, "map50_95": 0.40}, {"seed": 2, "map50_95": 0.35}]
    method = [{"seed": 2, "map50_95": 0.41}, {"seed": 0, "map50_95": 0.34}, {"seed": 1, "map50_95": 0.42}]
    p = common.paired(method, student)
    assert p["paired_gain"] == pytest.approx([0.06, 0.04, 0.02])  # matched by seed, not by position
    assert p["paired_gain_mean"] == pytest.approx(0.04)
    assert p["paired_gain_se"] == pytest.approx(0.02 / 3**0.5)
    assert common.paired(method[:1], student)["paired_gain_se"] is None


def test_recipe_spec():
    assert common.recipe_spec("cwd_mimic") == {"recipe": "cwd_mimic"}
    assert common.recipe_spec("cwd_mimic:cwd=0.3,mimic=0,adapter=conv_bn") == {
        "recipe": "cwd_mimic",
        "cwd": 0.3,
        "mimic": 0,
        "adapter": "conv_bn",
    }


def test_runs_are_kept_by_the_recipe_they_resolve_to():
    base = {"method": "yolodistill", "model": "yolov8n.yaml", "seed": 0, "name": "a"}
    own = load_recipe("head_kd").cls_kd
    spelled = common.run_settings({**base, "recipe": "head_kd", "cls_kd": own, "name": "b"})
    assert spelled == common.run_settings({**base, "recipe": "head_kd"})  # head_kd's own cls_kd, spelled out
    assert spelled["recipe"]["cls_kd"] == own and "name" not in spelled
    assert common.run_settings({**base, "recipe": "head_kd", "cls_kd": own + 1}) != spelled
    assert "box_kd" not in spelled["recipe"]  # keys at their default stay out: a new loss leaves earlier runs valid


@pytest.mark.parametrize(
    "named, measured_as, other",
    [
        ("head_bckd", "head_kd:cls_kd_beta=1", "head_kd"),
        ("head_bckd_fg", "head_bckd:cls_kd_weighted=true", "head_bckd"),
        ("finetune", "head_bckd_fg:cls_kd=4,ld=2", "head_bckd_fg"),
    ],
)
def test_a_named_recipe_reads_back_the_runs_made_before_it_had_a_name(named, measured_as, other):
    """README: head_bckd's suite rows are the runs made as `head_kd:cls_kd_beta=1`, head_bckd_fg's those made as
    `head_bckd:cls_kd_weighted=true`, and the pretrained default's (finetune) those made as
    `head_bckd_fg:cls_kd=4,ld=2`, before each had a name."""
    base = {"method": "yolodistill", "model": "yolov8n.yaml", "seed": 0}
    spelled = common.run_settings({**base, **common.recipe_spec(measured_as)})
    assert common.run_settings({**base, **common.recipe_spec(named)}) == spelled
    assert common.run_settings({**base, "recipe": other}) != spelled


def test_a_kept_run_is_read_back_only_while_the_checkpoints_it_used_hold_the_same_weights(tmp_path, teacher_pt,
                                                                                          monkeypatch):  # fmt: skip
    import torch

    monkeypatch.setattr(common, "KEPT", tmp_path / "kept")
    teacher = tmp_path / "teacher.pt"
    ckpt = torch.load(teacher_pt, weights_only=False)
    torch.save(ckpt, teacher)
    job = {"method": "yolodistill", "model": "yolov8n.yaml", "data": "d.yaml", "teacher": str(teacher), "seed": 0}
    kept, settings = common.kept_record(**job)
    kept.parent.mkdir()

    def keep(weights: dict) -> None:
        kept.write_text(json.dumps({"settings": settings, "weights": weights, "result": {"map50_95": 0.5}}))

    keep(common.input_weights("yolov8n.yaml", teacher))
    assert common.is_kept(**job)
    torch.save({**ckpt, "date": "another day"}, teacher)  # saved again, same weights: other bytes, same hash
    assert common.is_kept(**job)
    keep({})  # kept before runs recorded their weights: not to be paired with a teacher that is here
    assert not common.is_kept(**job)
    keep(common.input_weights("yolov8n.yaml", teacher))
    with torch.no_grad():
        next(ckpt["ema"].parameters()).add_(1)
    torch.save(ckpt, teacher)  # retrained to other weights at the same path: the kept run is stale
    assert not common.is_kept(**job)
    student = {**job, "method": "student"}  # the plain student of the same row: it never read the teacher
    kept_student, student_settings = common.kept_record(**student)
    kept_student.write_text(json.dumps({"settings": student_settings, "weights": {}, "result": {"map50_95": 0.4}}))
    assert common.is_kept(**student) and common.run_inputs("student", "yolov8n.yaml", teacher) == {}
    teacher.unlink()  # not here at all: read back unchecked (a regime tabulated again without its teacher)
    assert common.is_kept(**job)
    assert list(common.input_weights("yolov8n.yaml", f"[{teacher_pt},{teacher}]")) == [str(teacher_pt)]  # ensemble


def run_script(name: str, tmp_path: Path, *args: str) -> tuple[dict, str]:
    env = {**os.environ, "BENCH_RESULTS": str(tmp_path / "results"), "BENCH_RUNS": str(tmp_path / "runs")}
    env.update(BENCH_CACHE=str(tmp_path / "cache"), BENCH_KEPT=str(tmp_path / "kept"))
    env["YOLODISTILL_HOME"] = str(tmp_path / "home")  # models the scripts train (the pretrained student) land here
    done = subprocess.run(
        [sys.executable, str(BENCH / name), *args], env=env, check=True, capture_output=True, text=True
    )
    out = args[args.index("--out") + 1] if "--out" in args else Path(name).stem
    return json.loads((tmp_path / "results" / f"{out}.json").read_text()), done.stdout


@pytest.mark.slow
def test_a_teacher_trained_with_other_batch_settings_is_cached_apart(tmp_path, monkeypatch):
    from yolodistill import demo

    monkeypatch.setenv("YOLODISTILL_HOME", str(tmp_path))
    before = common.trained("yolov8s.yaml", "d.yaml", 100, 96, 16, "cpu", train=False)
    assert before == demo.teacher_path("yolov8s.yaml", "d.yaml", 100, 96, 0)  # the path teachers were cached at before
    paths = [common.trained("yolov8s.yaml", "d.yaml", 100, 96, b, "cpu", train=False, nbs=8) for b in (8, 16)]
    assert len({before, *paths}) == 3
    seen = {}

    def fake_train(cls, threads, **overrides):  # what the teacher would be trained with, and a checkpoint
        seen.update(overrides)
        (tmp_path / "best.pt").write_bytes(b"weights")
        return type("Trainer", (), {"best": tmp_path / "best.pt"})

    monkeypatch.setattr(demo, "train_with_threads", fake_train)
    assert common.trained("yolov8s.yaml", "d.yaml", 100, 96, 8, "cpu", nbs=8) == paths[0] and paths[0].is_file()
    assert (seen["batch"], seen["nbs"], seen["imgsz"], seen["epochs"]) == (8, 8, 96, 100)
    # further settings (a regime's optimizer) key the teacher apart too, and reach its training
    adamw = common.trained("yolov8s.yaml", "d.yaml", 100, 96, 8, "cpu", nbs=8, train_args={"optimizer": "AdamW"})
    assert adamw not in {before, *paths} and adamw.is_file() and seen["optimizer"] == "AdamW"


def test_efficacy_script(tmp_path, data_yaml, teacher_pt):
    args = [
        "efficacy.py", tmp_path, "--data", str(data_yaml), "--teacher", str(teacher_pt), "--imgsz", str(IMGSZ),
        "--epochs", "1", "--batch", "8", "--seeds", "0", "1", "--recipes", "cwd:cwd=2", "--dis", "6",
        "--out", "smoke",
    ]  # fmt: skip
    result, _ = run_script(*args)
    rows = {(r["method"], r.get("dis")): r for r in result["rows"]}
    assert list(rows) == [
        ("student", None),
        ("yolodistill:cwd:cwd=2", None),
        ("ultralytics:distill_model", 6.0),
    ]
    assert [r["default"] for r in rows.values()] == [False, False, True]  # a recipe with overrides is not the default
    assert all(r["seeds"] == [0, 1] and len(r["per_seed"]) == 2 for r in rows.values())
    student, teacher = rows[("student", None)]["map50_95_mean"], result["teacher"]["map50_95"]
    by_seed = {p["seed"]: p["map50_95"] for p in rows[("student", None)]["per_seed"]}
    for r in result["rows"][1:]:
        assert r["gap_recovery"] == common.gap_recovery(r["map50_95_mean"], student, teacher)
        assert r["paired_gain"] == [p["map50_95"] - by_seed[p["seed"]] for p in r["per_seed"]]
        assert r["paired_gain_mean"] == pytest.approx(sum(r["paired_gain"]) / 2)
    assert (tmp_path / "results" / "smoke.png").stat().st_size > 0
    distill = tmp_path / "runs" / "smoke-yolodistill_cwd_cwd_2-s1" / "distill.yaml"  # run folders named by --out
    recipe = yaml.safe_load(distill.read_text())["recipe"]
    assert recipe["cwd"] == 2.0 and recipe["mimic"] == 0.0  # the override reached the trainer
    again, stdout = run_script(*args)  # an interrupted benchmark continues: finished runs are read back, not retrained
    assert stdout.count("finished before with these settings, kept") == 6
    assert again["rows"] == result["rows"]


@pytest.mark.slow
def test_lowres_script(tmp_path, data_yaml, teacher_pt):
    result, _ = run_script(
        "lowres.py", tmp_path, "--data", str(data_yaml), "--teacher", str(teacher_pt), "--imgsz", str(IMGSZ),
        "--epochs", "1", "--batch", "8", "--seeds", "0", "--recipes", "lowres", "lowres:cls_kd=2", "--out", "low",
    )  # fmt: skip
    assert (tmp_path / "results" / "low.png").is_file()  # --out names the JSON (read by run_script) and the chart
    rows = {r["method"]: r for r in result["rows"]}
    low = IMGSZ // 2
    assert list(rows) == [f"student@{IMGSZ}", f"student@{low}", f"yolodistill:lowres@{low}<-{IMGSZ}",
                          f"yolodistill:lowres:cls_kd=2@{low}<-{IMGSZ}"]  # fmt: skip
    assert [r["default"] for r in rows.values()] == [False, False, True, False]
    distill = tmp_path / "runs" / f"low-yolodistill_lowres_cls_kd_2@{low}_from_{IMGSZ}-s0" / "distill.yaml"
    assert yaml.safe_load(distill.read_text())["recipe"]["cls_kd"] == 2.0  # the override reached the trainer
    for r in result["rows"][2:]:
        gap = common.gap_recovery(r["map50_95_mean"], rows[f"student@{low}"]["map50_95_mean"],
                                  rows[f"student@{IMGSZ}"]["map50_95_mean"])  # fmt: skip
        assert r["gap_recovery"] == gap and "paired_gain_mean" in r


@pytest.mark.slow
def test_regime_script(tmp_path, data_yaml, teacher_pt):
    result, stdout = run_script(
        "regime.py", tmp_path, "--data", str(data_yaml), "--teacher", str(teacher_pt), "--imgsz", str(IMGSZ),
        "--batch", "8", "--seeds", "0", "1", "--schedules", "1", "2:val", "--nbs", "16", "--out", "toy",
    )  # fmt: skip
    assert [(r["epochs"], r["validate_every_epoch"]) for r in result["rows"]] == [(1, False), (2, True)]
    for r in result["rows"]:
        maps = [p["map50_95"] for p in r["per_seed"]]
        assert [p["seed"] for p in r["per_seed"]] == [0, 1]
        assert r["map50_95_mean"] == pytest.approx(sum(maps) / 2)
        assert r["teacher_gap"] == pytest.approx(result["teacher"]["map50_95"] - r["map50_95_mean"])
        assert r["meets"] == (r["map50_95_mean"] >= 0.35 and r["map50_95_std"] <= 0.03 and r["teacher_gap"] >= 0.15)
    args = yaml.safe_load((tmp_path / "runs" / "toy-e1-s0" / "args.yaml").read_text())
    assert args["epochs"] == 1 and args["val"] is False  # validated only after the last epoch
    assert args["nbs"] == 16 and result["nbs"] == 16
    assert "2:val" in stdout


@pytest.mark.slow
def test_overhead_script(tmp_path, data_yaml):
    result, _ = run_script(
        "overhead.py", tmp_path, "--data", str(data_yaml), "--imgsz", str(IMGSZ), "--batch", "2", "--iters", "2",
        "--warmup", "1", "--recipes", SCRATCH_RECIPE, "cwd_mimic", "--profile-steps", "1",
    )  # fmt: skip
    rows = {r["method"]: r for r in result["rows"]}
    ours = f"yolodistill:{SCRATCH_RECIPE}"
    assert list(rows) == ["student", "floor", ours, "yolodistill:cwd_mimic", "ultralytics:distill_model"]
    assert rows[ours]["default"] and not rows["yolodistill:cwd_mimic"]["default"]
    for r in rows.values():
        assert r["step_s"] > 0 and r["ratio_to_floor"] == pytest.approx(r["step_s"] / rows["floor"]["step_s"])
    assert result["profile_default_recipe"], "the profiler table of the default recipe is empty"


@pytest.mark.slow
def test_suite_script_measures_regimes_resumes_and_merges(tmp_path, data_yaml, teacher_pt, monkeypatch):
    teacher = tmp_path / "teacher.pt"
    teacher.write_bytes(Path(teacher_pt).read_bytes())  # removed below
    toy = ["--set", f"data={data_yaml}", f"teacher={teacher}", f"pretrained.pretrained_on={data_yaml}",
           f"imgsz={IMGSZ}", "epochs=1", "batch=8", "pretrained_epochs=1", "train_args=[[lr0,0.02]]", "--seeds", "0",
           "--recipes", "head_kd:balance=0.5", f"ld:ensemble={teacher}", "--out", "suite_toy"]  # fmt: skip
    first, _ = run_script("suite.py", tmp_path, "--regimes", "scratch", *toy)
    scratch = first["regimes"]["scratch"]
    assert [(r["method"], r["default"]) for r in scratch["rows"]] == [
        ("student", False),
        (f"yolodistill:{SCRATCH_RECIPE}", True),  # students from scratch: their default
        ("yolodistill:head_kd:balance=0.5", False),
        (f"yolodistill:ld:ensemble={teacher}", False),
        ("ultralytics:distill_model", True),
    ]
    for run in ("student", f"yolodistill_{SCRATCH_RECIPE}", "ultralytics_distill_model"):  # a regime's train_args
        assert (
            yaml.safe_load((tmp_path / "runs" / f"suite_toy-scratch-{run}-s0" / "args.yaml").read_text())["lr0"] == 0.02
        )
    (ensemble,) = (tmp_path / "runs").glob("suite_toy-scratch-yolodistill_ld_ensemble*-s0")
    assert yaml.safe_load((ensemble / "distill.yaml").read_text())["teacher"] == [str(teacher)] * 2
    student = scratch["rows"][0]
    for r in scratch["rows"][1:]:
        gr = common.gap_recovery(r["map50_95_mean"], student["map50_95_mean"], scratch["teacher"]["map50_95"])
        assert r["gap_recovery"] == gr and len(r["paired_gain"]) == 1
    assert scratch["student_plateau"] == 0.0  # one epoch: its last is its 75 % point (from the kept curves)
    assert scratch["settings"]["student"] == "yolov8n.yaml"  # `--set pretrained.…` changed that regime only
    assert first["wall_s"] > 0 and "took" in report.quick_line(first)  # what --quick is budgeted by
    # the second call reads scratch's 5 runs back and adds the pretrained regime beside it
    second, stdout = run_script("suite.py", tmp_path, "--regimes", "scratch", "pretrained", *toy)
    assert stdout.count("finished before with these settings, kept") == 5
    assert list(second["regimes"]) == ["scratch", "pretrained"]
    assert second["regimes"]["scratch"]["rows"] == scratch["rows"]
    pretrained = second["regimes"]["pretrained"]
    assert pretrained["settings"]["student"].endswith(".pt")  # trained first with plain Ultralytics, then fine-tuned
    distill = tmp_path / "runs" / f"suite_toy-pretrained-yolodistill_{DEFAULT_RECIPE}-s0" / "distill.yaml"
    recipe = yaml.safe_load(distill.read_text())["recipe"]
    default = load_recipe(DEFAULT_RECIPE)
    assert recipe == default.to_dict() and default.cls_kd > 0 and default.ld > 0  # the default: class KD and LD

    # --kept-only on a regime new to the JSON (another --out): its teacher, on disk, is validated; its runs read back
    fresh = [*toy[:-2], "--out", "suite_fresh", "--kept-only"]
    new, stdout = run_script("suite.py", tmp_path, "--regimes", "scratch", *fresh)
    assert stdout.count("finished before with these settings, kept") == 5
    assert new["regimes"]["scratch"]["rows"] == scratch["rows"]
    assert new["regimes"]["scratch"]["teacher"]["map50_95"] == scratch["teacher"]["map50_95"]
    # every run kept and the teacher gone: the regime is tabulated again from the kept runs, not trained again
    teacher.unlink()
    third, stdout = run_script("suite.py", tmp_path, "--regimes", "scratch", *toy)
    assert stdout.count("finished before with these settings, kept") == 5 and not teacher.exists()
    assert third["regimes"]["scratch"]["rows"] == scratch["rows"]
    assert third["regimes"]["scratch"]["teacher"] == scratch["teacher"]
    # --kept-only trains nothing: a row whose runs are not kept is left out
    kept_only = [*toy[:-2], "ld:ld=2", "--out", "suite_toy", "--kept-only"]
    fourth, stdout = run_script("suite.py", tmp_path, "--regimes", "scratch", *kept_only)
    assert fourth["regimes"]["scratch"]["rows"] == scratch["rows"]
    assert stdout.count("finished before with these settings, kept") == 5
    assert not (tmp_path / "runs" / "suite_toy-scratch-yolodistill_ld_ld_2-s0").exists()
    # nor does it train the pretrained student, which kept runs no longer need
    (pretrained_pt,) = (tmp_path / "home" / "teachers").glob("yolov8n-*.pt")
    pretrained_pt.unlink()
    fifth, stdout = run_script("suite.py", tmp_path, "--regimes", "pretrained", *kept_only)
    assert fifth["regimes"]["pretrained"]["rows"] == pretrained["rows"] and not pretrained_pt.exists()

    readme = "intro\n<!-- suite:start -->\nold\n<!-- suite:end -->\nrest\n"
    monkeypatch.setitem(report.GENERATORS, "suite", lambda: report.suite_tables(second))
    text = report.render(readme)
    assert text.startswith("intro\n<!-- suite:start -->\n| regime |") and text.endswith("<!-- suite:end -->\nrest\n")
    assert "| `yolodistill:head_kd:balance=0.5` | " in text
    assert f"| `yolodistill:{SCRATCH_RECIPE}` *default in `scratch`* | " in text
    assert f"| `yolodistill:{DEFAULT_RECIPE}` *default in `pretrained`* | " in text
    assert "old" not in text
    assert report.render(text) == text  # generated once, stable


def test_leader_is_the_yolodistill_method_whose_worst_regime_is_best():
    def r(method, gr, default=False, maps=(0.5, 0.5, 0.5)):
        per_seed = [{"seed": s, "map50_95": m} for s, m in enumerate(maps)]
        return {"method": method, "default": default, "gap_recovery": gr, "per_seed": per_seed}

    methods = {
        "`yolodistill:a`": {"s": r("yolodistill:a", 0.5, True), "p": r("yolodistill:a", -0.1, True)},
        "`yolodistill:b`": {"s": r("yolodistill:b", 0.3), "p": r("yolodistill:b", 0.1, maps=(0.6, 0.61, 0.59))},
        "`yolodistill:c`": {"s": r("yolodistill:c", 0.9)},  # not run in `p`: not a rival
        "`ultralytics:x`": {"s": r("ultralytics:x", 0.6), "p": r("ultralytics:x", 0.2)},  # not a recipe
    }
    (line,) = report._leaders(methods)[1:]
    # b's worst regime is a's too: the paired difference there says whether the lead is beyond noise
    assert "wherever `yolodistill:a` is the default (`s`, `p`): `yolodistill:b`, worst GR 10 %" in line
    assert line.endswith("against the default in that regime, `p`, paired +0.100 ± 0.006.  ")
    methods["`yolodistill:b`"]["p"] = r("yolodistill:b", 0.1, maps=(0.6, 0.4, 0.6))
    (line,) = report._leaders(methods)[1:]
    assert line.endswith("paired +0.033 ± 0.067 (within 2 standard errors: not beyond noise).  ")


def test_each_start_has_its_leader_read_on_the_regimes_it_is_the_default_of():
    def r(method, gr, default=False):
        return {"method": method, "default": default, "gap_recovery": gr, "paired_gain": [0.1],
                "paired_gain_mean": 0.1, "paired_gain_se": 0.01, "map50_95_mean": 0.5, "map50_95_std": 0.0,
                "per_seed": [{"map50_95": 0.5, "time_s": 60.0}]}  # fmt: skip

    # a: the default of `scratch`, b: of `pretrained`; each also runs in the other's regime
    methods = {
        "`yolodistill:a`": {"scratch": r("yolodistill:a", 0.7, True), "pretrained": r("yolodistill:a", 0.1)},
        "`yolodistill:b`": {"scratch": r("yolodistill:b", 0.5), "pretrained": r("yolodistill:b", 0.2, True)},
    }
    lines = report._leaders(methods)[1:]
    assert "wherever `yolodistill:a` is the default (`scratch`): `yolodistill:a`, worst GR 70 %" in lines[0]
    assert "wherever `yolodistill:b` is the default (`pretrained`): `yolodistill:b`, worst GR 20 %" in lines[1]
    student = {"method": "student", "default": False, "map50_95_mean": 0.4, "map50_95_std": 0.0,
               "per_seed": [{"map50_95": 0.4, "time_s": 60.0}]}  # fmt: skip
    regimes = {name: {"settings": {"about": name}, "teacher": {"map50_95": 0.8}, "reference_map50_95": 0.8,
                      "rows": [student, *(by[name] for by in methods.values())]}
               for name in ("scratch", "pretrained")}  # fmt: skip
    text = report.suite_tables({"regimes": regimes})
    assert "| `yolodistill:a` *default in `scratch`* | " in text
    assert "| `yolodistill:b` *default in `pretrained`* | " in text


def test_seeds_table_reads_a_candidate_against_the_default_seed_by_seed():
    def r(method, per_seed, gr, default=False):
        runs = [{"seed": s, "map50_95": m, "map50": m, "time_s": 60.0} for s, m in enumerate(per_seed)]
        return {"method": method, "default": default, "gap_recovery": gr, "per_seed": runs, "paired_gain": [],
                "paired_gain_mean": 0.01, "paired_gain_se": 0.001}  # fmt: skip

    def regime(ours, theirs, gr_ours, gr_theirs):
        rows = [{"method": "student", "default": False, "gap_recovery": None,
                 "per_seed": [{"seed": s, "map50_95": 0.5} for s in range(3)]},
                r("yolodistill:a", ours, gr_ours, True), r("yolodistill:b", theirs, gr_theirs)]  # fmt: skip
        return {"settings": {"about": "x", "seeds": [0, 1, 2]}, "rows": rows}

    # b leads in p, the default's worst regime, by 0.01 on every seed (se 0: > 2 se), and by a changing sign in q
    wins = {"p": regime([0.60, 0.61, 0.62], [0.61, 0.62, 0.63], 0.1, 0.2),
            "q": regime([0.60, 0.61, 0.62], [0.62, 0.60, 0.63], 0.5, 0.4)}  # fmt: skip
    text = report.seeds_tables({"regimes": wins})
    assert "| `yolodistill:b` | 0.610 / 0.620 / 0.630 | 20 % | +0.010 ± 0.001 | +0.0100 ± 0.0000 (> 2 se) |" in text
    assert "(under 2 se)" in text
    assert text.endswith("`yolodistill:b` (20 %); in `p`, the default's worst regime, it is ahead of the default by "
                         "> 2 se: it replaces the default.")  # fmt: skip
    # the same GRs, with b's lead in p changing sign from seed to seed: a tie
    tie = {**wins, "p": regime([0.60, 0.61, 0.62], [0.62, 0.60, 0.63], 0.1, 0.2)}
    assert report.seeds_tables({"regimes": tie}).endswith("not ahead of the default by > 2 se: a tie, which goes to "
                                                          "the default.")  # fmt: skip
    lead = {"p": regime([0.60, 0.61, 0.62], [0.61, 0.62, 0.63], 0.3, 0.2)}
    assert report.seeds_tables({"regimes": lead}).endswith("Best worst GR over these regimes: `yolodistill:a` (30 %).")


def test_goal_names_what_is_missed():
    rows = [{"method": "student", "default": False, "gap_recovery": None},
            {"method": "yolodistill:head_kd", "default": True, "gap_recovery": 0.30, "paired_gain_mean": 0.02,
             "paired_gain_se": 0.005},
            {"method": "ultralytics:distill_model", "default": True, "gap_recovery": 0.2}]  # fmt: skip
    assert report.goal({"rows": rows}) == "missed: GR 30 % < 40 %; not 2× the built-in's 20 %"
    rows[1].update(gap_recovery=0.5, paired_gain_se=0.02)
    assert report.goal({"rows": rows}) == "missed: paired gain not > 2 se"
    rows[1].update(paired_gain_se=0.001)
    assert report.goal({"rows": rows}) == "met"


def test_regime_table_names_the_limits_a_schedule_misses():
    result = {"command": "python benchmarks/regime.py", "teacher": {"model": "t.yaml", "epochs": 5, "map50_95": 0.6},
              "criteria": {"student_mean_min": 0.35, "student_std_max": 0.03, "teacher_gap_min": 0.15},
              "rows": [{"schedule": "31:val", "per_seed": [{"map50_95": 0.3}, {"map50_95": 0.4}], "map50_95_mean": 0.35,
                        "map50_95_std": 0.05, "teacher_gap": 0.25, "meets": False},
                       {"schedule": "40", "per_seed": [{"map50_95": 0.5}], "map50_95_mean": 0.5, "map50_95_std": 0.0,
                        "teacher_gap": 0.1, "meets": False}]}  # fmt: skip
    text = report.regime_table(result)
    assert "| 31:val | 0.300 / 0.400 | 0.350 ± 0.050 | 0.25 | no: std > 0.03 |" in text
    assert "| 40 | 0.500 | 0.500 ± 0.000 | 0.10 | no: gap < 0.15 |" in text


def test_rows_table_marks_only_the_yolodistill_default_of_its_time():
    seeds = [{"seed": 0, "map50_95": 0.5}]
    base = {"per_seed": seeds, "map50_95_mean": 0.5, "map50_95_std": 0.0, "map50_mean": 0.7, "map50_std": 0.0}
    result = {"command": "python benchmarks/efficacy.py", "settings": {"data": "shapes", "epochs": 3, "imgsz": 64,
              "batch": 8, "seeds": [0]}, "teacher": {"model": "t.yaml", "epochs": 5, "imgsz": 64, "map50_95": 0.6,
              "map50": 0.8},
              "rows": [{**base, "method": "student", "default": False, "gap_recovery": None},
                       {**base, "method": "yolodistill:ld", "default": True, "gap_recovery": 0.25,
                        "paired_gain_mean": 0.02, "paired_gain_se": None},
                       {**base, "method": "ultralytics:distill_model", "dis": 6.0, "default": True,
                        "gap_recovery": -0.1}]}  # fmt: skip
    text = report.rows_table(result)
    assert "| `yolodistill:ld` *default then* | 0.500 | 0.500 ± 0.000 | +0.020 | 0.700 ± 0.000 | 25 % |" in text
    assert "| `ultralytics:distill_model dis=6` | 0.500 |" in text and "| `student` | 0.500 |" in text


def test_readme_tables_are_what_the_json_gives():
    """README's generated parts match benchmarks/results/*.json: run `python benchmarks/report.py` after a benchmark."""
    readme = report.README.read_text()
    assert report.render(readme) == readme


def test_steps_matched_runs_on_the_labelled_share_take_the_steps_of_all_labels():
    assert unlabeled.matched_epochs(30, 600, 60, 16) == 285  # 30 × 38 batches = 285 × 4
    assert unlabeled.matched_epochs(30, 600, 600, 16) == 30
    settings = {"labelled_images": 60, "unlabeled_images": 540, "data": "shapes", "epochs": 30, "imgsz": 128,
                "batch": 16, "unlabeled_ratio": 1.0, "seeds": [0]}  # fmt: skip
    assert report._few_epochs(settings) == ""
    assert report._few_epochs({**settings, "labelled_share_epochs": 285}) == (
        " (285 on the labelled share: as many steps as on all labels)"
    )


@pytest.mark.slow
def test_unlabeled_script_splits_the_labels_and_reads_each_row(tmp_path, data_yaml):
    toy = ["--data", str(data_yaml), "--pretrain-data", str(data_yaml), "--labelled", "0.5", "--teacher",
           "yolov8n.yaml", "--pretrain-epochs", "1", "--teacher-pretrain-epochs", "1", "--teacher-epochs", "1",
           "--full-teacher-epochs", "1", "--epochs", "1", "--imgsz", str(IMGSZ), "--batch", "4", "--seeds", "0", "1",
           "--ratios", "2", "--out", "unlabeled_toy"]  # fmt: skip
    result, _ = run_script("unlabeled.py", tmp_path, *toy)
    assert result["settings"]["labelled_images"] == 8 and result["settings"]["unlabeled_images"] == 8
    pool = (tmp_path / "cache" / "unlabeled_toy-split" / "unlabeled.txt").read_text().split()
    kept = sorted(p.name for p in (tmp_path / "cache" / "unlabeled_toy-split" / "images" / "train").iterdir())
    assert len(pool) == 8 and not {Path(p).name for p in pool} & set(kept)  # the two parts do not overlap
    rows = {r["method"]: r for r in result["rows"]}
    low, high = rows["student, 50 % labels"], rows["student, all labels"]
    assert list(rows)[2:] == [*(f"distilled{u}, {t} teacher" for t in ("50 % labels", "all labels")
                                for u in ("", " + unlabeled")),
                              "distilled + unlabeled ×2, 50 % labels teacher",  # the other ratio, then pseudo
                              "distilled + unlabeled + pseudo-labels, 50 % labels teacher"]  # fmt: skip
    for name, r in list(rows.items())[1:]:
        assert r["gap_recovery"] == common.gap_recovery(r["map50_95_mean"], low["map50_95_mean"], high["map50_95_mean"])
        assert r["paired_gain"] == common.paired(r["per_seed"], low["per_seed"])["paired_gain"]
        if "+ unlabeled" in name:
            alone = rows[re.sub(r" \+ unlabeled( ×2| \+ pseudo-labels)?", "", name)]
            assert r["over_labelled_only"] == common.paired(r["per_seed"], alone["per_seed"])
            assert r["unlabeled_ratio"] == (2.0 if "×2" in name else 1.0)
            assert r["pseudo"] == (1.0 if "pseudo" in name else 0.0)
    runs = tmp_path / "runs"
    state = yaml.safe_load(
        (runs / "unlabeled_toy-distilled_unlabeled_50_labels_teacher-s0" / "distill.yaml").read_text()
    )
    assert state["unlabeled"].endswith("unlabeled.txt") and state["unlabeled_ratio"] == 1.0
    assert state["recipe"]["pseudo"] == 0
    pseudo = runs / "unlabeled_toy-distilled_unlabeled_pseudo-labels_50_labels_teacher-s0" / "distill.yaml"
    assert yaml.safe_load(pseudo.read_text())["recipe"]["pseudo"] == 1.0
    assert set(result["teachers"]) == {"50 % labels", "all labels"}
    table = report.unlabeled_table(result)
    assert (
        "| distilled + unlabeled, 50 % labels teacher | " in table and "Goal (the labelled share's teacher): " in table
    )
    assert "unlabeled_ratio with the labelled share's teacher: 1 (default) " in table and " 2 " in table


@pytest.mark.slow
def test_tasks_script_reads_a_task_on_its_own_output(tmp_path, task_data):
    """A toy run of benchmarks/tasks.py on one task (not a measurement): its teacher, the six rows (one per task loss,
    one of --recipes) read on the masks' mAP with the boxes' beside, kept runs read back."""
    toy = ["--tasks", "segment", "--data", str(task_data["segment"]), "--teacher-epochs", "1", "--epochs", "1",
           "--imgsz", str(IMGSZ), "--batch", "8", "--seeds", "0", "--out", "tasks_toy",
           "--recipes", "ld:ld=2"]  # fmt: skip
    measured_before = {"metric": "pose", "settings": {"epochs": 99}, "rows": []}  # another task, kept beside it
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "tasks_toy.json").write_text(json.dumps({"tasks": {"pose": measured_before}}))
    result, _ = run_script("tasks.py", tmp_path, *toy)
    r = result["tasks"]["segment"]
    assert result["tasks"]["pose"] == measured_before and r["metric"] == "seg" and r["settings"]["epochs"] == 1
    assert r["teacher"]["model"] == "yolov8s-seg.yaml" and Path(r["teacher"]["checkpoint"]).is_file()
    assert "tasks.py --tasks segment" in r["command"]  # each task keeps the command of its own rows
    rows = {x["method"]: x for x in r["rows"]}
    assert list(rows) == [
        "student",
        f"yolodistill:{SCRATCH_RECIPE}",
        f"yolodistill:{SCRATCH_RECIPE}:mask_kd=1",
        f"yolodistill:{SCRATCH_RECIPE}:proto_kd=1",
        "yolodistill:ld:ld=2",
        "ultralytics:distill_model",
    ]
    assert [x["default"] for x in rows.values()] == [False, True, False, False, False, False]
    assert all("box_map50_95_mean" in x for x in rows.values()) and "box_map50_95" in r["teacher"]
    for x in r["rows"][1:]:
        assert x["paired_gain"] == common.paired(x["per_seed"], rows["student"]["per_seed"])["paired_gain"]
    for m, loss, weight in ((2, "mask_kd", 1.0), (3, "proto_kd", 1.0), (4, "ld", 2.0)):
        state = yaml.safe_load((tmp_path / "runs" / f"tasks_toy-segment-m{m}-s0" / "distill.yaml").read_text())
        assert state["recipe"][loss] == weight
    assert (tmp_path / "runs" / "teacher").is_dir()  # the teacher trains into the benchmark's runs folder
    again, stdout = run_script("tasks.py", tmp_path, *toy)
    assert stdout.count("finished before with these settings, kept") == 6
    assert again["tasks"] == result["tasks"]
    # --task-losses picks the task-loss rows (the rest read back as kept); a loss of no task named is refused
    some, stdout = run_script("tasks.py", tmp_path, *toy, "--task-losses", "mask_kd")
    assert [x["method"] for x in some["tasks"]["segment"]["rows"]] == [m for m in rows if "proto_kd" not in m]
    assert stdout.count("finished before with these settings, kept") == 5
    with pytest.raises(subprocess.CalledProcessError) as refused:
        run_script("tasks.py", tmp_path, *toy, "--task-losses", "kpt_kd")
    assert "--task-losses names ['kpt_kd'], not a loss of ['segment']" in refused.value.stderr


def test_task_tables_read_each_task_on_its_own_output_and_name_missed_aims():
    def run(method, default, maps, gr=None, gain=None):
        r = {
            "method": method,
            "default": default,
            "per_seed": [{"seed": i, "map50_95": m} for i, m in enumerate(maps)],
            "map50_95_mean": sum(maps) / len(maps),
            "map50_95_std": 0.01,
            "gap_recovery": gr,
            "box_map50_95_mean": 0.5,
        }
        return r | ({} if gain is None else {"paired_gain_mean": gain, "paired_gain_se": 0.01})

    def task(student, teacher, ours_gr, ours=f"yolodistill:{SCRATCH_RECIPE}"):
        rows = [run("student", False, [student, student]), run(ours, True, [0.3, 0.31], ours_gr, 0.05),
                run("ultralytics:distill_model", False, [0.26, 0.27], 0.2, 0.01) | {"dis": 6.0}]  # fmt: skip
        return {"metric": "seg", "settings": {"epochs": 31, "imgsz": 128, "batch": 16, "seeds": [0, 1]},
                "teacher": {"model": "yolov8s-seg.yaml", "epochs": 50, "map50_95": teacher, "box_map50_95": 0.6},
                "rows": rows}  # fmt: skip

    text = report.task_tables({"tasks": {"segment": task(0.25, 0.45, 0.5)}})
    assert "| run | mask mAP50-95 per seed | mask mAP50-95 | paired gain ± se | GR | box mAP50-95 |" in text
    ours = f"`yolodistill:{SCRATCH_RECIPE}`"
    assert f"| {ours} *default* | 0.300 / 0.310 | 0.305 ± 0.010 | +0.050 ± 0.010 | 50 % | 0.500 |" in text
    assert "Regime: the student learns" in text and f"Goal, {ours}: met." in text and "not measured on" not in text
    assert "**pose**: not measured yet" in text and "**obb**: not measured yet" in text and "Rows of" not in text
    cmd = "python benchmarks/tasks.py --tasks segment"
    assert f"seeds 0, 1. Rows of `{cmd}`." in report.task_tables(
        {"tasks": {"segment": task(0.25, 0.45, 0.5) | {"command": cmd}}}
    )
    weak = report.task_tables({"tasks": {"segment": task(0.15, 0.2, 0.1)}})
    assert "aim missed: the student alone < 0.2; the teacher < 0.1 above the student" in weak
    assert f"Goal, {ours}: missed: GR 10 % < 40 %; not above the built-in's 20 %." in weak
    # measured under an earlier default: its row is no longer marked, and the table says today's is not measured
    before = report.task_tables({"tasks": {"segment": task(0.25, 0.45, 0.5, ours="yolodistill:earlier")}})
    assert "| `yolodistill:earlier` | " in before and "*default*" not in before
    assert f"Today's default {ours} is not measured on this task yet (`yolodistill:earlier` was the default" in before
    # a close call at more seeds, one task only: each yolodistill row's paired difference to the default
    five = task(0.25, 0.45, 0.5) | {"settings": {"epochs": 31, "imgsz": 128, "batch": 16, "seeds": [0, 1, 2, 3, 4]}}
    five["rows"][1]["per_seed"] = [{"seed": i, "map50_95": m} for i, m in enumerate((0.30, 0.31, 0.30, 0.32, 0.31))]
    five["rows"].append(run("yolodistill:other", False, [0.32, 0.33, 0.32, 0.34, 0.34], 0.6, 0.07))
    seeds = report.task_tables({"tasks": {"segment": five}}, every_task=False)
    assert (
        "**pose**" not in seeds
        and "Paired difference of `yolodistill:other` to the default: +0.0220 ± 0.0020 (> 2 se)" in seeds
    )
    assert f"Paired difference of {ours}" not in seeds
    assert "Paired difference" not in text  # at 2 seeds (3 in tasks.json): none


def test_long_regime_row_says_when_its_own_aims_are_missed():
    def regime(plateau, teacher):
        student = {"method": "student", "default": False, "map50_95_mean": 0.3, "map50_95_std": 0.01,
                   "per_seed": [{"map50_95": 0.3, "time_s": 1800.0}]}  # fmt: skip
        ours = {"method": "yolodistill:ld", "default": True, "gap_recovery": 0.5, "paired_gain_mean": 0.1,
                "paired_gain_se": 0.01, "paired_gain": [0.1],
                "per_seed": [{"map50_95": 0.4, "time_s": 3600.0}]}  # fmt: skip
        return {"settings": {"about": "x"}, "teacher": {"map50_95": teacher}, "reference_map50_95": teacher,
                "student_plateau": plateau, "rows": [student, ours]}  # fmt: skip

    missed = report.suite_tables({"regimes": {"long": regime(0.05, 0.35)}})
    assert "plateau > 0.01" in missed and "teacher < 0.1 above the student" in missed
    met = report.suite_tables({"regimes": {"long": regime(0.005, 0.6)}})
    assert "regime aim missed" not in met
    assert "regime aim missed" not in report.suite_tables({"regimes": {"scratch": regime(0.05, 0.35)}})
    # the cost line counts a run two regimes share (the same figures in both) once, in the first of them
    shared = report.suite_tables({"regimes": {"scratch": regime(0.05, 0.35), "cross_family": regime(0.05, 0.35)}})
    assert (
        "Cost of the suite's runs above: 2 runs, 1.5 h of one-thread training (`scratch` 1.5 h, `cross_family` 0.0 h), "
        "about 0.8 h of this 2-core machine with two side by side (budget: 5 h)." in shared
    )
    assert "ablation" not in shared
    # an ablation row is counted apart from the suite's budget and tagged in the method table
    extra = regime(0.05, 0.35)
    extra["rows"].append({**extra["rows"][1], "method": "yolodistill:cwd", "default": False, "ablation": True,
                          "per_seed": [{"map50_95": 0.35, "time_s": 7200.0}]})  # fmt: skip
    text = report.suite_tables({"regimes": {"scratch": extra}})
    assert "Cost of the suite's runs above: 2 runs, 1.5 h" in text
    extra["rows"][1]["per_seed"][0]["time_s"] = 11.5 * 3600.0  # 12 h of one thread, 6 h of two: said plainly
    assert "about 6.0 h of this 2-core machine with two side by side (budget: 5 h; over it)." in report.suite_tables(
        {"regimes": {"scratch": extra}}
    )
    assert "(`--ablations`, beyond the budget): 1 runs, 2.0 h more" in text
    assert "| `yolodistill:cwd` (ablation) | " in text


def test_candidates_leave_the_screening_regime_only_where_they_reach_the_defaults_worst_regime():
    import suite

    def entry(*rows: tuple[str, float]) -> dict:
        return {"rows": [{"method": f"yolodistill:{m}", "gap_recovery": gr} for m, gr in rows]}

    screen = {"pretrained": entry((DEFAULT_RECIPE, 0.02), ("ld", -0.06), ("cross_kd", 0.05), ("ld:ld=2", 0.02))}
    every = ["ld", "cross_kd", "ld:ld=2", "box_kd"]
    assert suite.screened("pretrained", "pretrained", every, DEFAULT_RECIPE, screen) == every
    # box_kd: not run there
    assert suite.screened("pretrained_long", "pretrained", every, DEFAULT_RECIPE, screen) == ["cross_kd", "ld:ld=2"]
    # the default's worst regime is another one: what is below the default in SCREEN but above that runs on
    lower = {**screen, "pretrained_long": entry((DEFAULT_RECIPE, -0.1))}
    assert suite.screened("pretrained_long", "pretrained", every, DEFAULT_RECIPE, lower) == every[:3]
    assert suite.screened("pretrained_long", "pretrained", every, DEFAULT_RECIPE, {}) == []  # SCREEN not run yet
    assert suite.screened("scratch", "scratch", every, SCRATCH_RECIPE, {}) == every  # scratch is its own SCREEN
    assert suite.screened("lowres", "lowres", ["head_kd:assistant=true"], "lowres", {}) == ["head_kd:assistant=true"]


def test_suite_measures_a_regime_again_when_a_later_one_lowers_the_defaults_worst_gr(monkeypatch):
    import suite

    d = SCRATCH_RECIPE
    gr = {"scratch": {d: 0.6, "x": 0.5}, "cross_family": {d: 0.6}, "long": {d: 0.1}}
    calls = []

    def measure(name, regime, args, out, before, candidates):  # what the regime's rows would say
        calls.append((name, candidates))
        return {"rows": [{"method": f"yolodistill:{m}", "gap_recovery": g} for m, g in gr[name].items()]}

    monkeypatch.setitem(suite.CANDIDATES, "scratch", ["x"])
    monkeypatch.setattr(suite, "measure", measure)
    monkeypatch.setattr(suite, "write_json", lambda *args: None)
    monkeypatch.setattr(suite.common, "measured", lambda *args: {})
    monkeypatch.setattr(sys, "argv", ["suite.py", "--regimes", "long", "cross_family", "scratch"])
    suite.main()
    # x is below the default in scratch (SCREEN, measured first) but above its worst regime once long has run: it runs
    # in cross_family, measured after long, and long is measured again with it (its other runs read back)
    assert calls == [("scratch", ["x"]), ("long", []), ("cross_family", ["x"]), ("long", ["x"])]


def test_each_regime_takes_the_default_of_its_students_start():
    import suite

    starts = {name: suite.student_start(regime) for name, regime in suite.REGIMES.items()}
    assert starts == {"scratch": "scratch", "pretrained": "pretrained", "pretrained_long": "pretrained",
                      "lowres": "lowres", "cross_family": "scratch", "long": "scratch"}  # fmt: skip
    assert set(suite.SCREEN) == set(starts.values()) and all(starts[r] == k for k, r in suite.SCREEN.items())


def test_demo_section_reads_both_runs_of_demo_json():
    def table(distilled):
        return {"teacher (yolov8s, 20 ep)": {"mAP50": 0.4, "mAP50-95": 0.3},
                "student (yolov8n, 10 ep)": {"mAP50": 0.2, "mAP50-95": 0.1},
                "distilled (head_bckd, 10 ep)": {"mAP50": 0.3, "mAP50-95": distilled}}  # fmt: skip

    settings = {"data": "shapes", "teacher": "yolov8s.yaml", "teacher_epochs": 20, "student": "yolov8n.yaml",
                "epochs": 10, "imgsz": 128, "batch": 16, "seed": 0, "recipe": "head_bckd", "threads": 2}  # fmt: skip
    result = {"machine": {"processor": "x86_64", "cpu_count": 2}, "settings": settings,
              "runs": [{"cache": "empty", "wall_s": 632.4, "table": table(0.25)},
                       {"cache": "cached", "wall_s": 223.0, "table": table(0.25)}]}  # fmt: skip
    text = report.demo_section(result)
    assert "**10 min 32 s** from an empty cache" in text and "**3 min 43 s** with both cached" in text
    assert "| distilled (head_bckd, 10 ep) | 0.300 | 0.250 |" in text
    assert "Gap recovery 0.75 on one seed; the run from an empty cache printed the same table." in text
    result["runs"][0]["table"] = table(0.2)
    assert "printed other figures" in report.demo_section(result)
