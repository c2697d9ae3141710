"""Dataset names: `data=<name>` is looked up in datasets.yaml; `builtin:` entries are generated offline on first use."""

from __future__ import annotations

import yaml

from .utils import bundled


def registry() -> dict[str, str]:
    """The name → data yaml mapping of datasets.yaml."""
    return yaml.safe_load(bundled("datasets.yaml").read_text())


def resolve_data(data: str) -> str:
    """Return the data yaml for `data`: a datasets.yaml name is mapped, anything else (a path) passes through."""
    target = registry().get(str(data), str(data))
    if target.startswith("builtin:"):
        from .synthetic import builtin  # generating imports cv2 and writes files: only when asked for

        return str(builtin(target.split(":", 1)[1]))
    return target
