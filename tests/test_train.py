"""End-to-end: CLI and API runs, what lands in the run directory and checkpoints, resume, lower-resolution student."""

from __future__ import annotations

import csv
import os
import pickletools
import subprocess
import sys
import zipfile

import pytest
import torch
from conftest import IMGSZ, train_args
from ultralytics.nn.tasks import DetectionModel

from yolodistill import DistillationTrainer, distill
from yolodistill.recipes import SCRATCH_RECIPE
from yolodistill.trainer import CKPT_KEY

pytestmark = pytest.mark.slow  # every test here trains a model


def test_cli_run_writes_an_ultralytics_run(distilled_run):
    weights = distilled_run / "weights"
    assert (weights / "best.pt").is_file() and (weights / "last.pt").is_file()
    with open(distilled_run / "results.csv") as f:
        header = next(csv.reader(f))
    assert "train/cls_kd_loss" in header and "train/ld_loss" in header  # the default recipe: class KD + LD
    assert "metrics/mAP50-95(B)" in header
    assert not any(k.startswith("val/") and ("cls_kd" in k or "ld_loss" in k) for k in header)
    assert (distilled_run / "distill.yaml").is_file()


def test_checkpoint_is_a_plain_student(distilled_run, data_yaml):
    best = distilled_run / "weights" / "best.pt"
    with zipfile.ZipFile(best) as z:
        pickles = [z.read(n) for n in z.namelist() if n.endswith(".pkl")]
    # Every class the unpickler would import is named by a GLOBAL opcode (torch pickles with protocol 2).
    modules = {arg.split(" ")[0] for p in pickles for op, arg, _ in pickletools.genops(p) if op.name == "GLOBAL"}
    assert "ultralytics.nn.tasks" in modules
    assert not any(m.startswith("yolodistill") for m in modules)
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    vanilla = sum(p.numel() for p in DetectionModel("yolov8n.yaml", nc=6, verbose=False).parameters())
    assert sum(p.numel() for p in ckpt["model"].parameters()) == vanilla
    recipe = ckpt[CKPT_KEY]["recipe"]
    assert recipe["cls_kd"] > 0 and recipe["ld"] > 0 and ckpt[CKPT_KEY]["adapters"] == {}  # head losses: no adapters
    # Plain Ultralytics, with yolodistill made unimportable, validates and predicts with the checkpoint.
    code = (
        "import sys; sys.modules['yolodistill'] = None\n"
        "from ultralytics import YOLO\n"
        f"m = YOLO({str(best)!r})\n"
        f"r = m.val(data={str(data_yaml)!r}, imgsz={IMGSZ}, batch=8, device='cpu', plots=False, verbose=False)\n"
        f"p = m.predict({str(data_yaml.parent / 'images' / 'val')!r}, imgsz={IMGSZ}, verbose=False)\n"
        "print('OK', len(p), r.box.map50 >= 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OK 8 True" in out.stdout


def test_api_returns_metrics_and_best(workdir, data_yaml, teacher_pt):
    result = distill(teacher_pt, "yolov8n.yaml", data_yaml, recipe="cwd", **train_args(workdir / "runs", name="api"))
    assert result.best.is_file() and result.best.name == "best.pt"
    assert 0.0 <= result.metrics.box.map <= 1.0
    with open(result.save_dir / "results.csv") as f:
        header = next(csv.reader(f))
    assert "train/cwd_loss" in header and "train/mimic_loss" not in header


class _Stop(Exception):
    pass


def test_resume_restores_adapters_and_optimizer(workdir, data_yaml, teacher_pt):
    args = train_args(workdir / "runs", name="resume", epochs=2, recipe="mimic", mimic=2.0)
    trainer = DistillationTrainer(
        overrides={"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    )

    def stop_after_first_save(t):
        raise _Stop

    trainer.add_callback("on_model_save", stop_after_first_save)
    with pytest.raises(_Stop):
        trainer.train()
    last = trainer.last
    saved = torch.load(last, map_location="cpu", weights_only=False)
    assert saved["epoch"] == 0 and saved["optimizer"] is not None

    resumed = DistillationTrainer(overrides={"resume": str(last)})
    assert resumed.distill_args["mimic"] == 2.0 and resumed.distill_args["recipe"] == "mimic"
    restored = {}
    resumed.add_callback(
        "on_pretrain_routine_end",
        lambda t: restored.update({k: v.clone() for k, v in t.distiller.adapters.state_dict().items()}),
    )
    resumed.train()
    assert resumed.start_epoch == 1
    for k, v in saved[CKPT_KEY]["adapters"].items():
        torch.testing.assert_close(restored[k].cpu(), v)
    with open(resumed.csv) as f:
        assert [row[0].strip() for row in csv.reader(f)][1:] == ["1", "2"]


def test_teacher_is_frozen_outside_optimizer_and_ema(workdir, data_yaml, teacher_pt):
    args = train_args(workdir / "runs", name="frozen")
    trainer = DistillationTrainer(
        overrides={"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    )
    seen = {}

    def inspect(t):
        teacher = t.distiller.teacher
        in_optimizer = {id(p) for g in t.optimizer.param_groups for p in g["params"]}
        seen["teacher_in_optimizer"] = any(id(p) in in_optimizer for p in teacher.parameters())
        seen["adapters_in_optimizer"] = all(id(p) in in_optimizer for p in t.distiller.adapters.parameters())
        seen["ema_params"] = sum(p.numel() for p in t.ema.ema.parameters())
        seen["ema_hooks"] = sum(len(m._forward_hooks) for m in t.ema.ema.modules())
        seen["teacher_grad"] = any(p.requires_grad for p in teacher.parameters())
        seen["teacher_device"] = next(teacher.parameters()).device.type

    trainer.add_callback("on_train_epoch_end", inspect)
    trainer.train()
    vanilla = sum(p.numel() for p in DetectionModel("yolov8n.yaml", nc=6, verbose=False).parameters())
    assert seen == {
        "teacher_in_optimizer": False,
        "adapters_in_optimizer": True,
        "ema_params": vanilla,
        "ema_hooks": 0,
        "teacher_grad": False,
        "teacher_device": "cpu",
    }


def test_lowres_student_sees_only_small_images_and_teacher_only_large(workdir, data_yaml, teacher_pt):
    args = train_args(workdir / "runs", name="lowres", imgsz=64)
    overrides = {"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), "teacher_imgsz": 128}
    # CrossKD on the teacher's grid; ISRD's decoder from the student's 32×32 input conv to the 128 px image (r = 4)
    trainer = DistillationTrainer(overrides={**overrides, **args, "cross_kd": 1.0, "isrd": 1.0})
    sizes = {"student": set(), "teacher": set()}

    def record(t):
        if "hooked" not in sizes:
            sizes["hooked"] = True
            t.model.model[0].register_forward_hook(lambda m, i, o: sizes["student"].add(tuple(i[0].shape[-2:])))
            t.distiller.teacher.model[0].register_forward_hook(
                lambda m, i, o: sizes["teacher"].add(tuple(i[0].shape[-2:]))
            )

    trainer.add_callback("on_train_start", record)
    trainer.train()
    assert sizes["student"] == {(64, 64)}  # training batches and validation alike
    assert sizes["teacher"] == {(128, 128)}
    ckpt = torch.load(trainer.best, map_location="cpu", weights_only=False)
    assert ckpt["train_args"]["imgsz"] == 64
    assert ckpt[CKPT_KEY]["teacher_imgsz"] == 128
    vanilla = sum(p.numel() for p in DetectionModel("yolov8n.yaml", nc=6, verbose=False).parameters())
    assert sum(p.numel() for p in ckpt["model"].parameters()) == vanilla  # no decoder, no adapters in the student
    decoder = ckpt[CKPT_KEY]["adapters"][f"{trainer.distiller.decoder_index}.conv.weight"]  # but kept for resume
    assert decoder.shape == (3 * 4 * 4, 16, 1, 1)
    with open(trainer.csv) as f:
        row = next(csv.DictReader(f))
    assert all(float(row[f"train/{k}_loss"]) > 0 for k in ("cls_kd", "cross_kd", "isrd"))


def test_demo_prints_the_three_rows_and_caches_the_teacher(workdir, data_yaml, monkeypatch, capsys):
    from yolodistill.demo import run_demo

    monkeypatch.setenv("YOLODISTILL_HOME", str(workdir / "home"))
    table = run_demo(
        data=str(data_yaml), epochs=1, teacher_epochs=1, imgsz=IMGSZ, batch=8, project=str(workdir / "demo")
    )
    assert [k.split()[0] for k in table] == ["teacher", "student", "distilled"]
    assert all(0.0 <= v["mAP50-95"] <= v["mAP50"] <= 1.0 for v in table.values())
    out = capsys.readouterr().out
    assert "mAP50-95" in out and f"distilled ({SCRATCH_RECIPE}, 1 ep)" in out and "gap recovery" in out
    threads = f"Trained on a CPU, torch on {os.cpu_count()} threads: these figures and the time taken vary by machine"
    assert threads in out
    assert (workdir / "demo" / "demo.png").stat().st_size > 0
    assert len(list((workdir / "home" / "teachers").glob("yolov8s-*.pt"))) == 1
