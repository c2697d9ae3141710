"""What a careful user runs into: exact and rectangular low-resolution batches, cfg files and release names,
two distillations at once, resume that keeps its run, taps released after a failed step, args.yaml as it ran,
resuming a finished run, a device the machine lacks."""

from __future__ import annotations

import csv

import pytest
import torch
import yaml
from conftest import IMGSZ, make_teacher, train_args
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import DEFAULT_CFG

from yolodistill import DistillationTrainer, DistillError, distill
from yolodistill.alignment import student_size
from yolodistill.checks import merge_cfg, resume_args
from yolodistill.cli import entrypoint
from yolodistill.distiller import Distiller
from yolodistill.recipes import SCRATCH_RECIPE, load_recipe
from yolodistill.teacher import freeze


@pytest.mark.parametrize(
    ("teacher_hw", "ratio", "expected"),
    [((704, 704), 480 / 704, (480, 480)), ((704, 544), 480 / 704, (480, 384)), ((128, 96), 0.5, (64, 64))],
)
def test_student_size_is_exact_and_on_the_stride(teacher_hw, ratio, expected):
    assert student_size(teacher_hw, ratio, 32) == expected


@pytest.mark.parametrize(("teacher_hw", "expected"), [((704, 704), (480, 480)), ((704, 544), (480, 384))])
def test_lowres_batches_are_exact_even_when_the_scale_rounds_badly(
    workdir, data_yaml, teacher_pt, teacher_hw, expected
):
    # 480 / 704: a scale factor gives 479 px here; the student must see exactly imgsz, a rect batch stride multiples
    args = train_args(workdir / "runs", name="exact", imgsz=480, teacher_imgsz=704, recipe="lowres")
    trainer = DistillationTrainer(
        overrides={"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    )
    trainer.stride = 32  # set by Ultralytics' training setup
    batch = trainer.preprocess_batch({"img": torch.zeros(2, 3, *teacher_hw, dtype=torch.uint8)})
    assert tuple(batch["img"].shape[-2:]) == expected
    assert tuple(batch["teacher_img"].shape[-2:]) == teacher_hw


@pytest.mark.slow
def test_rect_lowres_trains(workdir, data_yaml, teacher_pt):
    args = train_args(workdir / "runs", name="rect", imgsz=64, teacher_imgsz=128, rect=True, recipe="lowres")
    trainer = DistillationTrainer(
        overrides={"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    )
    trainer.train()
    assert trainer.best.is_file()


@pytest.mark.slow
def test_cfg_file_sets_ultralytics_and_distillation_keys(workdir, data_yaml, teacher_pt, tmp_path):
    cfg = tmp_path / "my.yaml"
    cfg.write_text(yaml.safe_dump({"epochs": 2, "cls_kd": 0.7, "student": "yolov8n.yaml", "batch": 4}))
    args = {k: v for k, v in train_args(workdir / "runs", name="cfg").items() if k != "epochs"}
    argv = ["train", f"cfg={cfg}", f"teacher={teacher_pt}", f"data={data_yaml}", "batch=8"]
    assert entrypoint(argv + [f"{k}={v}" for k, v in args.items()]) == 0
    run = workdir / "runs" / "cfg"
    with open(run / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 2  # epochs from the file
    assert yaml.safe_load((run / "distill.yaml").read_text())["recipe"]["cls_kd"] == 0.7
    assert yaml.safe_load((run / "args.yaml").read_text())["batch"] == 8  # the command line wins over the file


def test_release_names_and_student_alias():
    assert merge_cfg({"student": "yolov8n", "teacher": "yolo11l"}) == {"model": "yolov8n.pt", "teacher": "yolo11l.pt"}
    assert merge_cfg({"model": "my_net", "teacher": "runs/best.pt"}) == {"model": "my_net", "teacher": "runs/best.pt"}
    with pytest.raises(DistillError, match="same argument"):
        merge_cfg({"student": "yolov8n.yaml", "model": "yolov8s.yaml"})


def test_release_name_without_suffix_loads_the_local_pt(workdir, data_yaml, teacher_pt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_teacher(tmp_path / "yolov8s.pt")  # what `yolo` would find (or download) for the name yolov8s
    args = train_args(workdir / "runs", name="stem")
    trainer = DistillationTrainer(
        overrides={"teacher": "yolov8s", "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    )
    assert trainer.distill_args["teacher"] == "yolov8s.pt"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["distill_model=big.pt"], "drop distill_model"),
        (["recipe=cwd", "cwd=0"], "no loss weight > 0"),
        (["cfg=/nonexistent/my.yaml"], "cfg '/nonexistent/my.yaml' could not be read"),
    ],
)
def test_more_bad_input_in_one_line(argv, message, data_yaml, teacher_pt, tmp_path, capsys):
    base = [f"teacher={teacher_pt}", "student=yolov8n.yaml", f"data={data_yaml}", f"imgsz={IMGSZ}", "device=cpu"]
    assert entrypoint(["train", *base, f"project={tmp_path / 'runs'}", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["cls_kd=0.9"], f"cls_kd=0.9 (run: {load_recipe(SCRATCH_RECIPE).cls_kd}) differ"),  # the run: the default
        (["teacher={other}"], "is not the file this run was started with"),
    ],
)
def test_resume_refuses_a_changed_run(midway_last, tmp_path, capsys, extra, message):
    other = make_teacher(tmp_path / "other.pt", seed=1)
    argv = ["train", f"resume={midway_last}", *(a.format(other=other) for a in extra)]
    assert entrypoint(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


@pytest.mark.slow
def test_resume_of_a_finished_run_is_one_line(distilled_run, data_yaml, teacher_pt, capsys):
    """Ultralytics' resume_training asserts with a traceback on a run that trained all its epochs, after the run's
    files are rewritten; here it is one line, up front, with the way to train further."""
    last, args_yaml = distilled_run / "weights" / "last.pt", distilled_run / "args.yaml"
    written = args_yaml.stat().st_mtime_ns
    assert entrypoint(["train", f"resume={last}", "epochs=5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "is from a finished run (all epochs=1 trained; resume cannot add epochs), nothing to resume" in err
    assert "\n" not in err
    assert f"start a new run from its weights, e.g. yolodistill train student={last.with_name('best.pt')}" in err
    assert args_yaml.stat().st_mtime_ns == written  # nothing of the run was rewritten
    with pytest.raises(DistillError, match="nothing to resume"):
        distill(teacher_pt, "yolov8n.yaml", data_yaml, resume=str(last))


@pytest.mark.parametrize(
    ("gpus", "device", "message"),
    [
        (0, "0", "device=0 was asked for, but this machine has no CUDA device: use device=cpu"),
        (0, "0,1", "device=0,1 was asked for, but this machine has no CUDA device: use device=cpu"),
        (1, "0,1", "device=0,1 was asked for, but this machine has 1 CUDA device(s), device=0: use those ids or"),
    ],
)
def test_a_device_that_is_not_there_is_one_line(
    gpus, device, message, data_yaml, teacher_pt, tmp_path, monkeypatch, capsys
):
    """What torch sees is faked, so the test means the same on any machine (select_device asks these two)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setenv("YOLODISTILL_HOME", str(tmp_path / "home"))
    runs = tmp_path / "runs"
    base = [f"teacher={teacher_pt}", "student=yolov8n.yaml", f"data={data_yaml}", f"project={runs}"]
    for argv in (["train", *base, f"device={device}"], ["demo", f"project={runs}", f"device={device}"]):
        assert entrypoint(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
    with pytest.raises(DistillError, match="was asked for, but this machine has"):
        distill(teacher_pt, "yolov8n.yaml", data_yaml, device=device, project=str(runs))
    assert not runs.exists() and not (tmp_path / "home").exists()  # no run, no demo dataset


def test_resume_args_keep_the_resolution_mode():
    state = {"recipe": load_recipe("cwd_mimic").to_dict(), "recipe_name": "cwd_mimic", "teacher": "t.pt", "imgsz": 320}
    lowres = {**state, "teacher_imgsz": 640}
    given = {"teacher": None, "recipe": None, "teacher_imgsz": None}
    assert resume_args(lowres, given, 320)["teacher_imgsz"] == 640
    with pytest.raises(DistillError, match="imgsz=256 on resume of a lower-resolution run"):
        resume_args(lowres, given, 256)
    normal = {**state, "teacher_imgsz": 320}
    assert resume_args(normal, given, 256)["teacher_imgsz"] == 256  # the teacher follows: still not low-resolution
    assert resume_args(normal, {**given, "cwd": 1, "mimic": "1.0"}, 320)["cwd"] == 1.0  # equal values are fine


def test_taps_hold_nothing_after_a_failed_step():
    torch.manual_seed(0)
    teacher = freeze(DetectionModel("yolov8s.yaml", nc=6, verbose=False))
    student = DetectionModel("yolov8n.yaml", nc=6, verbose=False)
    student.args = DEFAULT_CFG
    d = Distiller(teacher, load_recipe("cwd_mimic"), [15, 18, 21], [15, 18, 21], [128, 256, 512], [64, 128, 256])
    d.attach(student)

    def fail(*a, **k):
        raise torch.cuda.OutOfMemoryError("simulated")

    d.losses["mimic"].forward = fail  # raises after both models ran and filled their taps
    batch = {"img": torch.rand(2, 3, 64, 64), "batch_idx": torch.zeros(1), "cls": torch.zeros(1, 1)}
    batch["bboxes"] = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    try:
        with pytest.raises(torch.cuda.OutOfMemoryError):
            student(batch)  # the training step's call
        assert d.student_taps._maps == [None] * 3 and d.teacher_taps._maps == [None] * 3
    finally:
        d.detach()
    assert "loss" not in vars(student)  # the wrapper is gone with the hooks


def test_args_yaml_says_compile_was_off(workdir, data_yaml, teacher_pt):
    args = train_args(workdir / "runs", name="compile", compile=True, epochs=1)
    trainer = DistillationTrainer(
        overrides={"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    )
    assert yaml.safe_load((trainer.save_dir / "args.yaml").read_text())["compile"] is False
    assert trainer.args.compile is False


@pytest.mark.slow
def test_mlflow_sees_the_distillation_settings(workdir, data_yaml, teacher_pt, monkeypatch):
    """Ultralytics' MLflow callback logs dict(trainer.args); the distillation settings must be in it (the test's name
    contains test_mlflow, which the callback requires to run under pytest)."""
    from types import SimpleNamespace

    import ultralytics.utils.callbacks.mlflow as mlflow_cb

    logged = {}
    fake = SimpleNamespace(
        set_experiment=lambda name: None,
        autolog=lambda: None,
        active_run=lambda: None,
        start_run=lambda run_name: SimpleNamespace(info=SimpleNamespace(run_id="r1")),
        get_tracking_uri=lambda: "file:///tmp/mlruns",
        log_params=logged.update,
    )
    monkeypatch.setattr(mlflow_cb, "mlflow", fake)
    args = train_args(workdir / "runs", name="tracked", cls_kd=0.7)
    trainer = DistillationTrainer(
        overrides={"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    )
    trainer.add_callback("on_pretrain_routine_end", mlflow_cb.on_pretrain_routine_end)
    trainer.train()
    assert logged["yolodistill_teacher"] == str(teacher_pt) and len(logged["yolodistill_teacher_sha256"]) == 64
    assert logged["yolodistill_recipe"] == SCRATCH_RECIPE and logged["yolodistill_cls_kd"] == 0.7
    assert logged["yolodistill_teacher_imgsz"] == IMGSZ and logged["epochs"] == 1  # beside Ultralytics' own settings
    assert not any(k.startswith("yolodistill_") for k in vars(trainer.args))  # gone again: validators re-check args


@pytest.mark.slow
def test_auto_batch_profiles_the_teacher_too(workdir, data_yaml, teacher_pt, monkeypatch, caplog):
    """Auto-batch only profiles on CUDA; here the profiler is replaced by one that records what it was given."""
    import ultralytics.engine.trainer as engine

    profiled = {}

    def fake_check_train_batch_size(model, imgsz, **kw):
        x = torch.rand(2, 3, imgsz, imgsz)
        seen = []
        handle = model.teachers[0].model[0].register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[-2:])))
        out = model(x)
        handle.remove()
        profiled.update(params=sum(p.numel() for p in model.parameters()), teacher_input=seen, keys=set(out))
        return 7

    monkeypatch.setattr(engine, "check_train_batch_size", fake_check_train_batch_size)
    args = train_args(workdir / "runs", name="autobatch", batch=-1, imgsz=64, teacher_imgsz=128, recipe="lowres")
    trainer = DistillationTrainer(
        overrides={"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    )
    with caplog.at_level("INFO"):
        trainer.train()
    student_params = sum(p.numel() for p in DetectionModel("yolov8n.yaml", nc=6, verbose=False).parameters())
    assert profiled["params"] > student_params  # the teacher is in the profiled step
    assert profiled["teacher_input"] == [(128, 128)] and profiled["keys"] == {"student", "teachers"}
    assert trainer.batch_size == 7 and "auto-batch chose batch=7" in caplog.text


def test_release_teacher_is_fetched_like_yolo_does(workdir, data_yaml, teacher_pt, tmp_path, monkeypatch):
    """`teacher=yolov8l.pt` not on disk goes through Ultralytics' download helper (replaced here by a local copy)."""
    import shutil

    import yolodistill.teacher as teacher_module

    asked = []

    def fake_download(file):
        asked.append(str(file))
        shutil.copyfile(teacher_pt, file)
        return str(file)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(teacher_module, "attempt_download_asset", fake_download)
    args = train_args(workdir / "runs", name="fetched")
    trainer = DistillationTrainer(
        overrides={"teacher": "yolov8l.pt", "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    )
    assert asked == ["yolov8l.pt"] and trainer.plan.teacher is not None


def test_release_teacher_offline_is_one_line(data_yaml, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "teacher=yolov8x.pt", "student=yolov8n.yaml", f"data={data_yaml}", f"project={tmp_path / 'runs'}"]
    assert entrypoint(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "teacher 'yolov8x.pt' is not on disk and could not be downloaded" in err and "\n" not in err
    assert "pass teacher=path/to/yolov8x.pt" in err and not (tmp_path / "runs").exists()
