"""Unlabelled images (`unlabeled=`): found and checked, never treated as background by the detection loss, distilled
from, mixed into the labelled batches, and kept as part of the run's state on resume."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from conftest import IMGSZ, calibrated, make_teacher, train_args
from ultralytics.data.augment import Mosaic
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import DEFAULT_CFG
from ultralytics.utils.loss import v8DetectionLoss

from yolodistill import DistillationTrainer, DistillError
from yolodistill.checks import _unlabeled
from yolodistill.distiller import Distiller
from yolodistill.losses import PseudoLabelLoss
from yolodistill.recipes import load_recipe
from yolodistill.synthetic import generate
from yolodistill.taps import detect_inputs
from yolodistill.teacher import freeze
from yolodistill.trainer import CKPT_KEY
from yolodistill.unlabeled import MixedLoader, find_images, merge, unlabeled_batch


@pytest.fixture(scope="module")
def pool(workdir):
    """A folder of 10 generated images (their label files are beside them, and must be ignored)."""
    return generate(workdir / "pool", seed=7, n_train=10, n_val=2, imgsz=IMGSZ).parent / "images" / "train"


def test_images_from_a_folder_a_list_or_a_glob(pool, tmp_path):
    files = find_images(pool)
    assert len(files) == 10 and files == sorted(files)
    (tmp_path / "sub").mkdir()
    for f in files[3:5]:
        shutil.copy(f, tmp_path / "sub")
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join([*files[:3], *(f"sub/{Path(f).name}" for f in files[3:5])]) + "\n")
    assert len(find_images(listing)) == 5  # relative lines from the list's own folder
    assert find_images(str(pool / "train_0000[1-3].jpg")) == files[1:4]


def test_missing_empty_and_unreadable_are_refused_in_one_line(pool, tmp_path):
    with pytest.raises(DistillError, match="not found: pass a folder of images"):
        find_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DistillError, match="has no images"):
        find_images(tmp_path / "empty")
    bad = tmp_path / "bad"
    shutil.copytree(pool, bad)
    (bad / "broken.jpg").write_bytes(b"not an image at all")
    with pytest.raises(DistillError, match=r"1 of 11 images cannot be read \(e.g. '.*broken.jpg'"):
        find_images(bad)


def test_data_yaml_key_relative_to_its_path_and_the_ratio(pool, tmp_path):
    args = SimpleNamespace(rect=False)
    data = {"path": str(pool.parents[1]), "unlabeled": "images/train"}
    source, files, ratio = _unlabeled(args, {"unlabeled": None, "unlabeled_ratio": None}, data)
    assert source == str(pool) and len(files) == 10 and ratio == 1.0
    assert _unlabeled(args, {"unlabeled": None, "unlabeled_ratio": None}, {"path": "."}) == (None, [], 1.0)
    with pytest.raises(DistillError, match="unlabeled_ratio=2 given, but no unlabeled images"):
        _unlabeled(args, {"unlabeled": None, "unlabeled_ratio": 2}, {"path": "."})
    with pytest.raises(DistillError, match="must be a number > 0"):
        _unlabeled(args, {"unlabeled": str(pool), "unlabeled_ratio": 0}, data)
    with pytest.raises(DistillError, match="rect=True cannot be used"):
        _unlabeled(SimpleNamespace(rect=True), {"unlabeled": str(pool), "unlabeled_ratio": None}, data)
    assert [unlabeled_batch(16, r) for r in (1, 0.5, 0.01, 3)] == [16, 8, 1, 48]


def _no_batchnorm_coupling(model):
    """Training mode but BatchNorm on running statistics, so that no image's gradient depends on another's."""
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    return model


def _random_pair(recipe) -> tuple[DetectionModel, Distiller]:
    """A random-init student (no BatchNorm coupling between images) and a distiller of a random-init teacher whose
    outputs vary with the image (`calibrated`)."""
    torch.manual_seed(0)
    teacher = freeze(calibrated(DetectionModel("yolov8s.yaml", nc=6, verbose=False)))
    student = _no_batchnorm_coupling(DetectionModel("yolov8n.yaml", nc=6, verbose=False))
    student.args = DEFAULT_CFG
    layers = detect_inputs(student)
    return student, Distiller(teacher, recipe, layers, layers, [128, 256, 512], [64, 128, 256])


def test_unlabelled_images_get_no_detection_loss_but_are_distilled():
    student, distiller = _random_pair(load_recipe("head_kd"))
    x = torch.rand(4, 3, IMGSZ, IMGSZ, requires_grad=True)
    # two labelled images (one box each), then two unlabelled ones
    labels = {"batch_idx": torch.tensor([0.0, 1.0]), "cls": torch.tensor([[1.0], [3.0]]),
              "bboxes": torch.tensor([[0.5, 0.5, 0.3, 0.4], [0.3, 0.6, 0.2, 0.2]])}  # fmt: skip
    distiller.attach(student)
    try:
        loss, items = student.criterion(student(x), {"img": x, "labelled": 2, **labels})
        plain, _ = student.criterion.detection(student(x[:2]), {"img": x[:2], **labels})
    finally:
        distiller.detach()
    detection, distillation = loss[:3].sum(), loss[3:].sum()
    # the detection loss is that of the labelled images alone: value, normalisation (× 2 images) and all
    torch.testing.assert_close(loss[:3], plain)
    g_det = torch.autograd.grad(detection, x, retain_graph=True)[0]
    g_dist = torch.autograd.grad(distillation, x)[0]
    assert g_det[:2].abs().sum() > 0 and g_det[2:].abs().sum() == 0  # background would pull on images 2 and 3
    assert g_dist[2:].abs().sum() > 0  # the teacher teaches on them
    assert items["cls_kd_loss"] > 0 and items["ld_loss"] > 0


def test_merge_puts_the_labelled_first_and_counts_them():
    a = {"img": torch.zeros(2, 3, 8, 8), "cls": torch.ones(3, 1), "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
         "im_file": ("a", "b"), "ratio_pad": ((1, 1), (1, 1))}  # fmt: skip
    b = {"img": torch.ones(3, 3, 8, 8), "cls": torch.zeros(0, 1), "batch_idx": torch.zeros(0),
         "im_file": ("u", "v", "w"), "ratio_pad": ((2, 2),) * 3}  # fmt: skip
    m = merge(a, b)
    assert m["labelled"] == 2 and m["img"].shape[0] == 5 and m["img"][2:].eq(1).all()
    assert m["im_file"] == ("a", "b", "u", "v", "w") and len(m["ratio_pad"]) == 5
    assert m["batch_idx"].tolist() == [0.0, 0.0, 1.0] and m["cls"].shape == (3, 1)


def _mosaic_p(transforms) -> float | None:
    """The probability of the Mosaic among Ultralytics' (nested) training transforms."""
    for t in transforms.transforms:
        if isinstance(t, Mosaic):
            return t.p
        if hasattr(t, "transforms"):
            return _mosaic_p(t)
    return None


@pytest.mark.slow
@pytest.mark.parametrize("lowres", [False, True], ids=["same-size", "lowres"])
def test_training_mixes_unlabelled_images_into_every_batch(workdir, data_yaml, teacher_pt, pool, lowres, caplog):
    # the low-resolution run also pseudo-labels (a random teacher scores about 0.01: a threshold it passes)
    sizes = {"imgsz": IMGSZ, "teacher_imgsz": 2 * IMGSZ, "pseudo": 1.0, "pseudo_conf": 0.005} if lowres else {}
    args = train_args(workdir / "runs", name=f"unlabeled-{lowres}", close_mosaic=1, epochs=2, **sizes)
    overrides = {"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    trainer = DistillationTrainer(overrides={**overrides, "unlabeled": str(pool), "unlabeled_ratio": 0.25})
    seen = []
    trainer.add_callback(
        "on_train_epoch_end", lambda t: seen.append(_mosaic_p(t.train_loader.unlabelled.dataset.transforms))
    )
    with caplog.at_level("INFO"):
        trainer.train()
    assert isinstance(trainer.train_loader, MixedLoader) and seen == [1.0, 0.0]  # mosaic closed on both
    batch = next(iter(trainer.train_loader))
    assert batch["labelled"] == 8 and batch["img"].shape[0] == 10  # batch=8 plus 0.25 × 8 unlabelled
    assert set(batch["im_file"][8:]) <= {str(f) for f in find_images(pool)}
    assert batch["img"].shape[-1] == (2 * IMGSZ if lowres else IMGSZ)  # at the teacher's size, downscaled later
    assert not list(pool.parent.parent.glob("labels/*.cache"))  # nothing written beside the user's images
    log = caplog.text
    assert f"unlabeled: found 10 images in {pool}" in log
    assert "each batch of 8 labelled images gets 2 unlabelled ones: an epoch uses 4 unlabelled images" in log
    state = torch.load(trainer.best, map_location="cpu", weights_only=False)[CKPT_KEY]
    if lowres:
        pseudo = [float(r["train/pseudo_loss"]) for r in csv.DictReader(trainer.csv.open(), skipinitialspace=True)]
        assert len(pseudo) == 2 and min(pseudo) > 0 and state["recipe"]["pseudo"] == 1.0
    assert state["unlabeled"] == str(pool) and state["unlabeled_images"] == 10 and state["unlabeled_ratio"] == 0.25


@pytest.mark.slow
def test_resume_keeps_the_unlabelled_images_and_refuses_changed_ones(workdir, data_yaml, pool, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(pool, images)
    teacher = make_teacher(tmp_path / "t.pt", cfg="yolov8n.yaml")
    args = train_args(tmp_path / "runs", name="r")
    overrides = {"teacher": str(teacher), "model": "yolov8n.yaml", "data": str(data_yaml), **args}
    trainer = DistillationTrainer(overrides={**overrides, "unlabeled": str(images), "unlabeled_ratio": 2})
    trainer.train()
    ckpt = torch.load(trainer.last, map_location="cpu", weights_only=False)
    ckpt["epoch"], ckpt["train_args"]["epochs"] = 0, 2  # as after the first of two epochs
    midway = tmp_path / "midway.pt"
    torch.save(ckpt, midway)
    resumed = DistillationTrainer(overrides={"resume": str(midway)})
    assert resumed.plan.unlabeled == str(images) and resumed.plan.unlabeled_ratio == 2.0
    assert resumed.plan.unlabeled_files == find_images(images)
    assert yaml.safe_load((resumed.save_dir / "distill.yaml").read_text())["unlabeled"] == str(images)
    with pytest.raises(DistillError, match=r"unlabeled_ratio=1 \(run: 2.0\) differ"):
        DistillationTrainer(overrides={"resume": str(midway), "unlabeled_ratio": 1})
    shutil.copy(next(images.glob("*.jpg")), images / "new.jpg")
    with pytest.raises(DistillError, match=r"changed since the run started \(10 then, 11 now\)"):
        DistillationTrainer(overrides={"resume": str(midway)})


def _student_outputs(u: int, nc: int = 3):
    torch.manual_seed(0)
    student = DetectionModel("yolov8n.yaml", nc=nc, verbose=False).train()
    student.args = DEFAULT_CFG
    return student, student(torch.rand(u, 3, IMGSZ, IMGSZ))


def test_pseudo_labels_are_the_teachers_confident_boxes_after_nms():
    """Against labels written out by hand: per image, the boxes scoring >= conf, the lower of two overlapping boxes
    of one class dropped, passed to the student's detection criterion as an unlabelled image's labels."""
    student, preds = _student_outputs(2)
    criterion = v8DetectionLoss(student)
    a = preds["scores"].shape[-1]
    scores = torch.full((2, 3, a), -10.0)
    boxes = torch.tensor([0.1, 0.1, 0.3, 0.3]).repeat(2, a, 1)
    scores[0, 2, 5], boxes[0, 5] = 3.0, torch.tensor([0.2, 0.2, 0.6, 0.5])  # σ 0.95: kept
    scores[0, 2, 9], boxes[0, 9] = 2.0, torch.tensor([0.21, 0.2, 0.6, 0.52])  # σ 0.88, IoU > 0.7 with it: dropped
    scores[0, 1, 9] = 1.5  # ...but its class is class 2's (the top one), so no class-1 box there
    scores[1, 0, 7], boxes[1, 7] = 4.0, torch.tensor([0.5, 0.4, 0.9, 1.2])  # σ 0.98: kept, clipped to the image
    scores[1, 0, 8], boxes[1, 8] = -1.0, torch.tensor([0.0, 0.0, 0.5, 0.5])  # σ 0.27 < conf: not a label
    got = PseudoLabelLoss(conf=0.5)(preds, boxes, scores, criterion)
    labels = {"batch_idx": torch.tensor([0.0, 1.0]), "cls": torch.tensor([[2.0], [0.0]]),
              "bboxes": torch.tensor([[0.4, 0.35, 0.4, 0.3], [0.7, 0.7, 0.4, 0.6]])}  # fmt: skip
    want, _ = criterion(preds, labels)
    torch.testing.assert_close(got, want.sum() / 2)
    # nothing confident: every anchor is background to the student (no labels at all)
    empty = {"batch_idx": torch.zeros(0), "cls": torch.zeros(0, 1), "bboxes": torch.zeros(0, 4)}
    nothing, _ = criterion(preds, empty)
    torch.testing.assert_close(PseudoLabelLoss(conf=0.99)(preds, boxes, scores, criterion), nothing.sum() / 2)
    no_images = PseudoLabelLoss()({k: v[:0] for k, v in preds.items() if k != "feats"}, boxes[:0], scores[:0], None)
    assert no_images.item() == 0


def test_pseudo_labels_teach_the_unlabelled_images_only():
    # a random teacher scores about 0.01 everywhere: a low threshold makes it label something
    student, distiller = _random_pair(load_recipe("head_kd", {"pseudo": 1.0, "pseudo_conf": 0.005, "cls_kd": 0.0}))
    x = torch.rand(4, 3, IMGSZ, IMGSZ, requires_grad=True)
    labels = {"batch_idx": torch.tensor([0.0]), "cls": torch.tensor([[1.0]]), "bboxes": torch.tensor([[0.5] * 4])}
    distiller.attach(student)
    try:
        loss, items = student.criterion(student(x), {"img": x, "labelled": 2, **labels})
    finally:
        distiller.detach()
    assert distiller.names == ["ld_loss", "pseudo_loss"] and items["pseudo_loss"] > 0
    g = torch.autograd.grad(loss[-1], x)[0]
    assert g[:2].abs().sum() == 0 and g[2:].abs().sum() > 0


def test_pseudo_labels_need_unlabelled_images(workdir, data_yaml, teacher_pt):
    overrides = {"teacher": str(teacher_pt), "model": "yolov8n.yaml", "data": str(data_yaml), "pseudo": 1,
                 **train_args(workdir / "runs", name="pseudo-refused")}  # fmt: skip
    with pytest.raises(DistillError, match=r"pseudo=1 labels unlabelled images .* but there are none: pass unlabeled"):
        DistillationTrainer(overrides=overrides)
    with pytest.raises(DistillError, match=r"pseudo_conf=1\.0 .* between 0 and 1"):
        load_recipe("head_kd", {"pseudo_conf": 1})
