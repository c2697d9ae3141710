"""Forward hooks that record chosen layer outputs of an Ultralytics model (MMRazor calls these recorders)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import nn


def detect_inputs(model: nn.Module) -> list[int]:
    """Indices of the layers that feed the model's Detect head (P3/P4/P5 for YOLOv8), i.e. the head's `f`."""
    head = model.model[-1]
    return [int(i) % len(model.model) for i in head.f]


class OutputTaps:
    """Record the output of each of `modules` during the next forward (`labels` name them in errors).

    Only the current batch is held: `collect()` hands the maps over and forgets them, so activations of one step never
    outlive it. `remove()` takes the hooks off (also on `with` exit); the object itself is never stored on the model.
    """

    def __init__(self, modules: Sequence[nn.Module], labels: Sequence[object]):
        self.labels = list(labels)
        self._maps: list[torch.Tensor | None] = [None] * len(self.labels)
        self._handles = [m.register_forward_hook(partial(self._record, k)) for k, m in enumerate(modules)]

    def _record(self, k: int, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self._maps[k] = output

    def collect(self) -> list[torch.Tensor]:
        """Return the maps recorded by the last forward, one per module, and release them."""
        maps, self._maps = self._maps, [None] * len(self.labels)
        if any(m is None for m in maps):
            missing = [i for i, m in zip(self.labels, maps) if m is None]
            raise RuntimeError(f"{missing} did not run in the last forward")
        return maps

    def clear(self) -> None:
        """Drop any recorded maps (those of a forward that `collect()` never took)."""
        self._maps = [None] * len(self.labels)

    def remove(self) -> None:
        """Remove the hooks and drop any recorded maps."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.clear()

    def __enter__(self) -> OutputTaps:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class FeatureTaps(OutputTaps):
    """Record the outputs of `model.model[i]` for each i in `layers` during the next forward."""

    def __init__(self, model: nn.Module, layers: Sequence[int]):
        self.layers = [int(i) for i in layers]
        super().__init__([model.model[i] for i in self.layers], [f"layer {i}" for i in self.layers])
