"""Every place where yolodistill changes, for a while, what Ultralytics' trainer reads, and the behaviour of Ultralytics
8.4.190 each one relies on (with the test that fails if Ultralytics changes it).

BaseTrainer offers no extension point for these, so each is the smallest change around one of its methods: an
attribute that method reads is pointed elsewhere for the length of the call (`swapped`), then restored. No module-level
function of Ultralytics is replaced. One seam points a module attribute elsewhere: the dataset class that
build_yolo_dataset names, for the one call that builds the unlabelled images' dataset, in the trainer's own thread
during its setup; every other one changes the one trainer only. The other way, Ultralytics' own for its
`distill_model` (student and connectors wrapped in one module before DDP, so optimizer, clipping and EMA see them
without help), would change what the EMA copies and what every checkpoint pickles: the checkpoints stay the plain
student instead, so the seams stay.

    trainer method      swapped for the call                 Ultralytics 8.4.190 behaviour relied on          test
    save_model          wdir, last, best → weights/.staging  writes last.pt, best.pt, epochN.pt to these     test_crash
    final_eval          last, best → staged copies           strip_optimizer(self.last / self.best) in place  test_crash
    optimizer_step      model.parameters → + the adapters    clips clip_grad_norm_(self.model.parameters())   test_crash
    auto_batch          model → student and teacher          profiles the step of self.model                  test_edges
    run_callbacks       args → + yolodistill_* keys          integrations log vars(trainer.args) on start     test_edges
    train (DDP)         args → + the distillation args       the DDP file rebuilds the trainer from args      test_ddp
    get_dataloader      data.build.YOLODataset → Unlabeled-  build_yolo_dataset builds the class its module   test_unla-
                        Dataset, args.fraction → 1           names, cutting a train set to args.fraction      beled

One more seam lives with the student, not the trainer: `Distiller.attach` sets `student.loss` (Ultralytics' training
step calls `self.loss(batch)` on the model) for the whole run, and `Distiller.detach` deletes it again. And one with
the Pose heads of both models: `distiller.keypoint_offsets` sets the head's `anchors` (0) and `strides` (1) for one
call of its `kpts_decode`, which reads them from the head (Ultralytics 8.4.190: x = (2·x̂ + anchor − ½) · stride for
Pose, (x̂ + anchor) · stride for Pose26), so the call gives offsets in grid cells; tests/test_tasks checks them
against the head's own inference.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_UNSET = object()


@contextmanager
def swapped(obj: Any, **attrs: Any) -> Iterator[Any]:
    """`obj` with `attrs` set while the block runs; afterwards each attribute is what it was, or, where `obj` did not
    hold it itself (a class's method, a key not in an args namespace), deleted again so the class's shows through."""
    before = {k: vars(obj).get(k, _UNSET) for k in attrs}
    for k, v in attrs.items():
        setattr(obj, k, v)
    try:
        yield obj
    finally:
        for k, v in before.items():
            if v is _UNSET:
                delattr(obj, k)
            else:
                setattr(obj, k, v)
