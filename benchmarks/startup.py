"""Benchmark: how long `textune` commands take to answer when they need no model (help, catalog, bad input).

Usage (from the repository root):
    .venv/bin/python benchmarks/startup.py [--repeats 5] [--write-docs]

Each command runs in a fresh interpreter (after one warm-up run, so files are in the page cache); the table gives
the median and the fastest wall time, and the ratio of the median to the baseline measured in the same run:
`python -c "import torch, transformers"`, what every command paid before imports were made lazy.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial_command import DOCS, load_average, machine, write_section  # noqa: E402  (shared by every benchmark)

SECTION = "## Start-up (`benchmarks/startup.py`)"
BASELINE = "python -c 'import torch, transformers'"
COMMANDS = {
    "python -c pass (interpreter alone)": ["-c", "pass"],
    BASELINE: ["-c", "import torch, transformers"],
    "textune --help": ["-m", "textune", "--help"],
    "textune models": ["-m", "textune", "models"],
    "textune predict --help": ["-m", "textune", "predict", "--help"],
    "textune serve --help": ["-m", "textune", "serve", "--help"],
    "textune train --help": ["-m", "textune", "train", "--help"],
    "textune predict --model missing/ --input x.csv (error)": ["-m", "textune", "predict", "--model", "missing/",
                                                               "--input", "x.csv"],
    "textune train --train_file missing.csv (error)": ["-m", "textune", "train", "--train_file", "missing.csv"],
}


def wall_time(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=300, cwd=ROOT)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="Timed runs per command (after one warm-up).")
    parser.add_argument("--write-docs", action="store_true", help=f"Write the table into {DOCS.relative_to(ROOT)}.")
    args = parser.parse_args()
    # this checkout's textune, offline, whatever is installed in the interpreter
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1"}
    load_before = load_average()
    times = {}
    for name, command in COMMANDS.items():
        wall_time(command, env)
        times[name] = [wall_time(command, env) for _ in range(args.repeats)]
        print(f"{name}: median {statistics.median(times[name]):.2f} s, min {min(times[name]):.2f} s", flush=True)
    baseline = statistics.median(times[BASELINE])
    rows = [f"| `{name}` | {statistics.median(t):.2f} | {min(t):.2f} | {statistics.median(t) / baseline:.2f}x |"
            for name, t in times.items()]
    fill = functools.partial(textwrap.fill, width=110)  # wrapped as the other sections are
    text = "\n".join([
        SECTION, "",
        fill(f"Machine: {machine()}; load average {load_before:.1f} before, {load_average():.1f} after."), "",
        fill(f"Command: `.venv/bin/python benchmarks/startup.py --repeats {args.repeats}`. Each command in a fresh "
        "interpreter, after one warm-up run; seconds of wall time; the ratio is the median against the baseline "
        f"`{BASELINE}` of the same run, which every command paid before its imports were made lazy."), "",
        "| command | median s | min s | vs baseline |", "| --- | --- | --- | --- |", *rows, "",
        fill("What each loads (`tests/test_cli.py` checks it): `--help`, `models`, `serve --help` and the error paths "
        "import neither torch nor transformers; `predict --help` and the data-file checks import pandas (the "
        "`--chunk_rows` default and the file check live with the table readers); `train --help` needs "
        "transformers' TrainingArguments, which imports torch, so it costs what the baseline costs. A load "
        "average above the core count means other jobs shared the cores: absolute times are then inflated "
        "(*contended*), the ratios less so."), "",
    ])
    print("\n" + text)
    if args.write_docs:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
