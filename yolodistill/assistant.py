"""Teacher–Assistant–Student for a lower-resolution student (Pixel Distillation's TAS; `assistant=true`).

One distillation across both a resolution gap and a capacity gap is two harder problems at once; TAS splits them
into two runs of the ordinary trainer, input compression first:

  stage 1  the assistant: the teacher's own architecture and weights, trained at the student's `imgsz` and distilled
           from the teacher at `teacher_imgsz` (the low-resolution recipe, its maps and scores upsampled to the
           teacher's grid: Pixel Distillation's aligned feature preservation). Run `<name>-assistant`.
  stage 2  the student, distilled from the assistant at one resolution, so every head loss (LD and box KD too, which
           a resolution gap rules out) and the recipe the user chose apply. Run `<name>`.

`assistant=path/to/best.pt` skips stage 1 with an assistant trained before (one assistant can teach many students).
The assistant is only a teacher: nothing of it reaches the student's checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ultralytics.utils import DEFAULT_CFG

from .recipes import LOWRES_RECIPE, RECIPE_KEYS, default_recipe, load_recipe, starts_pretrained
from .utils import DistillError

ASSISTANT_ARGS = ("assistant", "assistant_epochs")


def stages(args: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The two runs' train args from the user's (`assistant`, `assistant_epochs` among them): stage 1's (None when
    `assistant` names a trained one) and stage 2's, whose teacher is stage 1's best.pt (filled in by `train`)."""
    args = dict(args)
    assistant, epochs = args.pop("assistant", None), args.pop("assistant_epochs", None)
    teacher_imgsz, imgsz = args.get("teacher_imgsz"), args.get("imgsz", DEFAULT_CFG.imgsz)
    if assistant in (None, False):
        raise DistillError("no assistant asked for: pass assistant=true (or assistant=path/to/assistant.pt)")
    if not teacher_imgsz or not imgsz or teacher_imgsz <= imgsz:
        raise DistillError(
            f"assistant= is for a lower-resolution student, but teacher_imgsz={teacher_imgsz} and imgsz={imgsz}: "
            "give teacher_imgsz > imgsz, or drop assistant="
        )
    student = {k: v for k, v in args.items() if k != "teacher_imgsz"}  # stage 2: one resolution
    # stage 2's recipe is checked now, not after the hours of stage 1
    start = starts_pretrained(args.get("model", args.get("student")), args.get("pretrained", True))
    load_recipe(args.get("recipe") or default_recipe(start), {k: args[k] for k in RECIPE_KEYS if k in args})
    if assistant is not True:
        if not Path(str(assistant)).is_file():
            raise DistillError(f"assistant '{assistant}' not found: pass assistant=true to train one first")
        return None, {**student, "teacher": str(assistant)}
    teacher = args.get("teacher")
    if isinstance(teacher, list):
        raise DistillError("assistant=true takes one teacher, whose architecture the assistant has: give one")
    # stage 1 trains the low-resolution recipe as it is: the recipe and keys given are the student's
    first = {k: v for k, v in args.items() if k not in ("model", "student", "recipe", "name", *RECIPE_KEYS)}
    first.update(model=teacher, recipe=LOWRES_RECIPE, name=f"{args.get('name') or 'train'}-assistant")
    if epochs is not None:
        first["epochs"] = epochs
    return first, student


def train(args: dict[str, Any], run: Callable[[dict[str, Any]], Any]) -> Any:
    """Both stages, each through `run(train_args) -> trainer` (the CLI's and the API's trainer run); returns stage 2's
    trainer. Stage 2's arguments are checked (by building its trainer) only once stage 1 has given its teacher."""
    first, second = stages(args)
    if first is not None:
        second["teacher"] = str(run(first).best)
    return run(second)
