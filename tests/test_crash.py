"""Crash-safe checkpoints: a run killed with SIGKILL at four moments resumes and finishes, with one results.csv row
per epoch; a truncated checkpoint gets one line; every checkpoint file is replaced atomically."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import train_args

from yolodistill.cli import entrypoint
from yolodistill.trainer import CKPT_KEY

pytestmark = pytest.mark.slow  # every test here trains a model

# Run in a subprocess: trains 3 epochs and SIGKILLs itself at the moment named by argv[2].
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import yolodistill.trainer as yt
    from yolodistill import DistillationTrainer

    args, moment = eval(sys.argv[1]), sys.argv[2]
    trainer = DistillationTrainer(overrides=args)
    batches = []

    def kill(*_):
        os.kill(os.getpid(), signal.SIGKILL)

    if moment == "mid_epoch":  # the second batch of the second epoch (4 batches an epoch)
        trainer.add_callback("on_train_batch_end", lambda t: (batches.append(1), len(batches) == 6 and kill()))
    elif moment == "after_epoch":  # the first epoch's checkpoints are written
        trainer.add_callback("on_model_save", kill)
    elif moment == "before_checkpoint":  # the second epoch's row is in results.csv, its checkpoint not yet written
        save = trainer.save_model  # Ultralytics calls it right after save_metrics appends the row
        trainer.save_model = lambda: kill() if trainer.epoch == 1 else save()
    elif moment == "while_saving":  # half of the second epoch's last.pt is on disk
        write = yt.write_atomic
        saves = []

        def half_then_kill(path, data):
            saves.append(path)
            if len(saves) > 2:  # epoch 0 wrote last.pt and best.pt
                with open(path.with_name(f".{path.name}.tmp"), "wb") as f:
                    f.write(data[: len(data) // 2])
                kill()
            write(path, data)

        yt.write_atomic = half_then_kill
    elif moment == "while_stripping":  # after the last epoch, half of the optimizer-stripped last.pt is written
        import io
        import torch

        def half_a_save_then_kill(obj, f):
            buffer = io.BytesIO()
            save(obj, buffer)
            with open(f, "wb") as out:
                out.write(buffer.getvalue()[: buffer.tell() // 2])
            kill()

        save = torch.save  # only Ultralytics' final strip_optimizer saves after the last on_model_save
        trainer.add_callback("on_model_save", lambda t: setattr(torch, "save", half_a_save_then_kill))
    trainer.train()
    """
)


@pytest.mark.parametrize("moment", ["mid_epoch", "after_epoch", "before_checkpoint", "while_saving"])
def test_killed_run_resumes_and_finishes(moment, workdir, data_yaml, teacher_pt, tmp_path):
    args = {"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), "recipe": "mimic"}
    args.update(train_args(tmp_path / "runs", name="killed", epochs=3, batch=4))
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    killed = subprocess.run(
        [sys.executable, "-c", SCRIPT, repr(args), moment], env=env, capture_output=True, timeout=600
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    last = tmp_path / "runs" / "killed" / "weights" / "last.pt"
    saved = torch.load(last, map_location="cpu", weights_only=False)  # whole, whatever the moment
    assert saved["epoch"] == 0  # the first epoch's: a kill while saving the second leaves it whole
    assert entrypoint(["train", f"resume={last}"]) == 0
    final = torch.load(last, map_location="cpu", weights_only=False)
    assert final[CKPT_KEY]["adapters"] and final[CKPT_KEY]["recipe"]["mimic"] == 1.0
    with open(tmp_path / "runs" / "killed" / "results.csv") as f:
        epochs = [int(float(r["epoch"])) for r in csv.DictReader(f)]
    assert epochs == [1, 2, 3]  # once each: the second epoch's row, written before a kill, is not kept twice


def test_killed_while_stripping_the_optimizer_keeps_last_pt_whole(workdir, data_yaml, teacher_pt, tmp_path):
    """Ultralytics' final_eval rewrites last.pt without its optimizer; killed halfway, the file stays the last
    epoch's full checkpoint (a plain DetectionTrainer would leave half a file)."""
    args = {"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), "recipe": "mimic"}
    args.update(train_args(tmp_path / "runs", name="stripped", epochs=1, batch=8))
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    killed = subprocess.run(
        [sys.executable, "-c", SCRIPT, repr(args), "while_stripping"], env=env, capture_output=True, timeout=600
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    saved = torch.load(tmp_path / "runs" / "stripped" / "weights" / "last.pt", map_location="cpu", weights_only=False)
    assert saved["epoch"] == 0 and saved["optimizer"] is not None  # the whole unstripped checkpoint


def test_truncated_checkpoint_on_resume_is_one_line(distilled_run, tmp_path, capsys):
    broken = tmp_path / "last.pt"
    data = (distilled_run / "weights" / "last.pt").read_bytes()
    broken.write_bytes(data[: len(data) // 3])
    assert entrypoint(["train", f"resume={broken}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "is truncated or unreadable: resume from best.pt or an epochN.pt" in err and "\n" not in err


def test_no_staging_or_temporary_files_stay_behind(distilled_run):
    weights = distilled_run / "weights"
    assert sorted(p.name for p in weights.iterdir()) == ["best.pt", "last.pt"]


def test_nan_from_the_teacher_never_reaches_the_weights(workdir, data_yaml, teacher_pt, caplog):
    """A NaN injected into the teacher's forward for one step: that step's distillation is dropped and counted, the
    student, its EMA and the adapters stay finite, and training goes on."""
    from yolodistill import DistillationTrainer

    args = train_args(workdir / "runs", name="nan", epochs=2, batch=4, recipe="cwd_mimic", cls_kd=0.5)
    trainer = DistillationTrainer(
        overrides={"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    )
    calls = []

    def poison(module, inputs, output):
        calls.append(1)
        return output * float("nan") if len(calls) == 2 else output  # the second training step

    trainer.add_callback("on_train_start", lambda t: t.distiller.teacher.model[0].register_forward_hook(poison))
    with caplog.at_level("WARNING"):
        trainer.train()
    assert "distillation dropped in 1 step(s)" in caplog.text
    for name, module in (
        ("student", trainer.model),
        ("ema", trainer.ema.ema),
        ("adapters", trainer.distiller.adapters),
    ):
        assert all(torch.isfinite(p).all() for p in module.state_dict().values() if p.is_floating_point()), name
    with open(trainer.csv) as f:
        assert len(list(csv.DictReader(f))) == 2


def test_ultralytics_nan_recovery_restores_student_and_adapters(workdir, data_yaml, teacher_pt, caplog):
    """Ultralytics reloads last.pt when an epoch ends with a non-finite loss; the adapters come back with it and the
    student keeps its hooks, so the epochs after the recovery still distil."""
    from yolodistill import DistillationTrainer

    args = train_args(workdir / "runs", name="recover", epochs=3, batch=8, recipe="mimic")
    trainer = DistillationTrainer(
        overrides={"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    )
    saved, restored = {}, {}

    def poison(t):  # the second epoch ends with a NaN loss: Ultralytics recovers from the first epoch's last.pt
        if t.epoch == 1 and not saved:
            saved.update(torch.load(t.last, map_location="cpu", weights_only=False)[CKPT_KEY]["adapters"])
            t.distiller.adapters.apply(lambda m: [p.data.add_(1.0) for p in m.parameters(recurse=False)])
            t.loss = torch.tensor(float("nan"))

    def after_recovery(t):
        if saved and not restored:
            restored.update({k: v.detach().clone() for k, v in t.distiller.adapters.state_dict().items()})

    trainer.add_callback("on_train_epoch_end", poison)
    trainer.add_callback("on_train_epoch_start", after_recovery)
    with caplog.at_level("WARNING"):
        trainer.train()
    assert "recovering from last.pt" in caplog.text
    assert restored.keys() == saved.keys() and all(torch.equal(restored[k], saved[k]) for k in saved)
    with open(trainer.csv) as f:
        rows = list(csv.DictReader(f))
    assert float(rows[-1]["epoch"]) == 3 and float(rows[-1]["train/mimic_loss"]) > 0


def test_adapters_are_clipped_with_the_student(workdir, data_yaml, teacher_pt, monkeypatch):
    import ultralytics.engine.trainer as engine

    from yolodistill import DistillationTrainer

    clipped = []
    plain_clip = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, **kw):
        params = list(params)
        clipped.append({id(p) for p in params})
        return plain_clip(params, max_norm, **kw)

    monkeypatch.setattr(engine.torch.nn.utils, "clip_grad_norm_", spy)
    args = train_args(workdir / "runs", name="clip", batch=8, recipe="mimic")
    trainer = DistillationTrainer(
        overrides={"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    )
    trainer.train()
    adapters = {id(p) for p in trainer.distiller.adapters.parameters()}
    student = {id(p) for p in trainer.model.parameters()}
    assert clipped and all(adapters <= ids and student <= ids for ids in clipped)
    assert "parameters" not in vars(trainer.model)  # the class's method again after each step
