"""Small shared helpers: the one-line user error, suggestions for misspelled keys, bundled resource paths, atomic file
replacement."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


class DistillError(ValueError):
    """Bad user input, reported as one line that names the problem and the fix (the CLI prints it, no traceback)."""


def suggest(key: str, valid: Iterable[str], what: str = "argument") -> DistillError:
    """Return the error for an unknown `key`, naming the closest valid keys."""
    close = difflib.get_close_matches(key, sorted(valid), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else "run 'yolodistill help' for the list"
    return DistillError(f"unknown {what} '{key}': {hint}")


def bundled(name: str) -> Path:
    """Path of a file shipped with yolodistill (`recipes`, `datasets.yaml`).

    Wheels carry them in `yolodistill/cfg` (see pyproject's force-include); a source checkout keeps them at the
    repository root, next to the package.
    """
    here = Path(__file__).resolve().parent
    inside = here / "cfg" / name
    return inside if inside.exists() else here.parent / name


def cache_home() -> Path:
    """Where generated datasets and demo teachers are cached: $YOLODISTILL_HOME, else ~/.cache/yolodistill."""
    env = os.environ.get("YOLODISTILL_HOME")
    return Path(env) if env else Path.home() / ".cache" / "yolodistill"


def replace_atomic(src: Path, path: Path) -> None:
    """Flush `src` to disk, then rename it over `path` (same file system; atomic on POSIX and Windows): readers, and a
    run resumed after a kill at any moment, see the old content or the new, never a truncated file."""
    with open(src, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(src, path)


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` (`.name.tmp`) to write the new content to; on leaving, it replaces `path`
    atomically (`replace_atomic`). Where nothing was written `path` stays as it is; on an error the temporary goes."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if tmp.exists():
        replace_atomic(tmp, path)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
