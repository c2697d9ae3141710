"""`yolodistill demo` as a benchmark: its table and its wall time, from an empty cache and then cached, in JSON.

Runs the demo with its defaults (`yolodistill.demo.DEMO`, the default recipe of its student, every core) twice in a
fresh YOLODISTILL_HOME: first from an empty cache (dataset generation and the teacher's training included), then again
with both cached. The second run trains the same students from the same seed. Writes benchmarks/results/demo.json (both
tables, both wall times, the torch thread count) and copies the demo's demo.png beside it; `python benchmarks/report.py`
puts README's demo section together from them. Run it on an otherwise idle machine: the times are the figure.

    python benchmarks/demo.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from common import RESULTS, write_json


def main() -> None:
    from yolodistill.demo import DEMO, run_demo
    from yolodistill.recipes import default_recipe, starts_pretrained

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["YOLODISTILL_HOME"] = str(Path(tmp) / "home")  # read by yolodistill.utils.cache_home at each call
        for cache in ("empty", "cached"):
            start = time.perf_counter()
            table = run_demo(project=str(Path(tmp) / cache))
            runs.append({"cache": cache, "wall_s": time.perf_counter() - start, "table": table})
        RESULTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / "cached" / "demo.png", RESULTS / "demo.png")
    recipe = default_recipe(starts_pretrained(DEMO["student"]))  # what run_demo's trainer picks
    write_json("demo", {"settings": {**DEMO, "recipe": recipe, "threads": os.cpu_count()}, "runs": runs})


if __name__ == "__main__":
    main()
