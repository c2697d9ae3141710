"""Multi-GPU DDP through Ultralytics' launcher, tested on CPU: what a worker rebuilds from Ultralytics' DDP
file, and adapters that stay identical across 2 gloo ranks and equal a single process on the whole batch."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import train_args
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import DEFAULT_CFG, DEFAULT_CFG_DICT
from ultralytics.utils.patches import torch_load

from yolodistill import DistillationTrainer, PoseDistillationTrainer
from yolodistill.distiller import Distiller, head_outputs
from yolodistill.recipes import SCRATCH_RECIPE, load_recipe
from yolodistill.seams import swapped
from yolodistill.teacher import freeze
from yolodistill.trainer import average_gradients, broadcast_from_rank0

STEPS, BATCH = 3, 4


def _rebuilt_in_worker(trainer: DistillationTrainer) -> DistillationTrainer:
    """The trainer a DDP worker builds from the file Ultralytics' launcher writes for `trainer`."""
    from ultralytics.utils.dist import ddp_cleanup, generate_ddp_file

    with swapped(trainer.args, **trainer.worker_args()):  # what train() does before Ultralytics writes the DDP file
        file = generate_ddp_file(trainer)
    try:
        state = torch_load(file.replace(".py", ".pt"), map_location="cpu")
        return state["trainer"](
            cfg={**DEFAULT_CFG_DICT, "save_dir": ""}, overrides=state["args"], _callbacks=state["callbacks"]
        )
    finally:
        ddp_cleanup(trainer, file)


def test_ddp_worker_rebuilds_the_same_distillation(workdir, data_yaml, teacher_pt):
    args = train_args(workdir / "runs", name="ddp", recipe="head_pkd", cls_kd=0.8, teacher_imgsz=128, ld=0)
    trainer = DistillationTrainer(
        overrides={"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    )
    rebuilt = _rebuilt_in_worker(trainer)
    assert isinstance(rebuilt, DistillationTrainer)
    assert rebuilt.plan.recipe == trainer.plan.recipe and rebuilt.plan.recipe.cls_kd == 0.8
    assert rebuilt.plan.recipe_name == "head_pkd" and rebuilt.plan.teacher_imgsz == 128
    assert rebuilt.distill_args["teacher"] == str(teacher_pt)
    assert not any(k in vars(trainer.args) for k in ("teacher", "recipe", "cls_kd"))  # gone again after the file
    assert rebuilt.plan.unlabeled is None and rebuilt.plan.unlabeled_files == []


def test_ddp_worker_takes_the_unlabelled_images(workdir, data_yaml, teacher_pt):
    images = str(data_yaml.parent / "images" / "val")
    args = train_args(workdir / "runs", name="ddp-unlabeled", unlabeled=images, unlabeled_ratio=0.5)
    trainer = DistillationTrainer(
        overrides={"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    )
    rebuilt = _rebuilt_in_worker(trainer)
    assert rebuilt.plan.unlabeled == images and rebuilt.plan.unlabeled_ratio == 0.5
    assert rebuilt.plan.unlabeled_files == trainer.plan.unlabeled_files and len(trainer.plan.unlabeled_files) == 8


def test_ddp_worker_of_a_task_run_is_the_trainer_of_its_task(workdir, task_data, task_teachers):
    args = train_args(workdir / "runs", name="ddp-pose", kpt_kd=2.0)
    overrides = {"teacher": str(task_teachers["pose"]), "model": "yolov8n-pose.yaml", "data": str(task_data["pose"])}
    trainer = PoseDistillationTrainer(overrides={**overrides, **args})
    rebuilt = _rebuilt_in_worker(trainer)
    assert type(rebuilt) is PoseDistillationTrainer and rebuilt.args.task == "pose"
    assert rebuilt.plan.recipe == trainer.plan.recipe and rebuilt.plan.recipe.kpt_kd == 2.0


@pytest.mark.slow
def test_resumed_ddp_worker_takes_the_distillation_from_the_checkpoint(midway_last, teacher_pt):
    """`resume=last.pt` alone: the worker gets teacher, recipe and its values from the checkpoint, as one GPU does."""
    trainer = DistillationTrainer(overrides={"resume": str(midway_last)})
    rebuilt = _rebuilt_in_worker(trainer)
    assert rebuilt.args.resume and rebuilt.plan.recipe == trainer.plan.recipe
    assert rebuilt.plan.recipe_name == trainer.plan.recipe_name == SCRATCH_RECIPE
    assert rebuilt.distill_args["teacher"] == str(teacher_pt)


def _models(adapter_seed: int = 1):
    torch.manual_seed(0)
    teacher = freeze(DetectionModel("yolov8s.yaml", nc=6, verbose=False))
    student = DetectionModel("yolov8n.yaml", nc=6, verbose=False).eval()  # BN on running stats: same on any split
    student.args = DEFAULT_CFG
    torch.manual_seed(adapter_seed)  # ranks are seeded differently, as Ultralytics seeds them (seed + 1 + RANK)
    distiller = Distiller(
        teacher, load_recipe("cwd_mimic"), [15, 18, 21], [15, 18, 21], [128, 256, 512], [64, 128, 256]
    )
    images = torch.rand(BATCH, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    return student, distiller, images


def _steps(model, student, distiller, images, ddp: bool) -> dict[str, torch.Tensor]:
    distiller.attach(student)
    adapters = list(distiller.adapters.parameters())
    opt = torch.optim.SGD([*student.parameters(), *adapters], lr=0.5)
    for _ in range(STEPS):
        preds = model(images)
        terms, _ = distiller(images, preds)
        # the detection loss uses every head output in training; DDP needs that, here 0 × outputs stands in for it
        head = head_outputs(preds)
        (terms.sum() + 0 * (head["boxes"].sum() + head["scores"].sum())).backward()
        if ddp:
            average_gradients(adapters)
        opt.step()
        opt.zero_grad()
    distiller.detach()
    return {k: v.detach().clone() for k, v in distiller.adapters.state_dict().items()}


def _rank(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        student, distiller, images = _models(adapter_seed=1 + rank)
        broadcast_from_rank0(list(distiller.adapters.parameters()))  # what the trainer does after its setup
        half = images.chunk(world)[rank]
        ddp = torch.nn.parallel.DistributedDataParallel(student, find_unused_parameters=True)
        torch.save(_steps(ddp, student, distiller, half, ddp=True), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_adapters_stay_equal_across_ranks_and_match_one_process(tmp_path):
    out, init = str(tmp_path / "adapters"), str(tmp_path / "init")
    mp.spawn(_rank, args=(2, init, out), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    student, distiller, images = _models()  # rank 0's adapters
    single = _steps(student, student, distiller, images, ddp=False)
    start = _models()[1].adapters.state_dict()
    for k in single:
        assert torch.equal(ranks[0][k], ranks[1][k]), k  # bit-identical on both ranks
        torch.testing.assert_close(ranks[0][k], single[k], atol=1e-5, rtol=1e-5)
        assert not torch.equal(single[k], start[k])  # they did train
