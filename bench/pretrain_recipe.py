"""Pretraining throughput of a real recipe on a real corpus, old code against new in one run.

``bench/pretrain.py`` times the paper's shape on random features; this times what a recipe does:
``actbert train`` itself (data loading, collation, every loss, AdamW) for ``--steps`` steps from
``--init``, with the recipe of a shipped model's ``train_config.json``. Each ``--code`` folder (a
checkout of this repository, e.g. a ``git worktree`` of an older commit; default: this one) runs
the same command in turn, ``--repeats`` times alternating, so a noisy machine affects them alike.
Throughput is samples/s between step ``--from-step`` and the last step (read from the run's
``train.jsonl``), so start-up and the first steps' warm-up are left out. From the second epoch on
the trainer keeps each unmasked text's frozen prefix (``pretraining/prefix_cache.py``): a
``--from-step`` past the first epoch times a long run's steady state, one inside it its start.
Prints one JSON object.

Usage: python bench/pretrain_recipe.py --corpus LIB/corpus.jsonl --init assets/demo/actbert
       [--recipe assets/demo/actbert/train_config.json] [--code OLD_CHECKOUT --code .]
       [--steps 60] [--from-step 10] [--repeats 2] [--threads 1] [--extra "--action-video-weight 1"]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# train_config.json fields a recipe passes on (the rest: paths, step counts, logging)
RECIPE_KEYS = ("clips_per_sample", "hard_negatives", "match_on", "match_weight", "freeze_text_layers",
               "max_text_tokens", "batch_size", "accumulate", "lr", "warmup_steps", "schedule",
               "seed")


def recipe_flags(recipe: dict) -> list[str]:
    """``--flag value`` for each recipe field the train command takes."""
    flags = []
    for key in RECIPE_KEYS:
        if recipe.get(key) is not None:
            flags += [f"--{key.replace('_', '-')}", str(recipe[key])]
    if recipe.get("use_regions") is False:
        flags.append("--no-regions")
    return flags


def rate_between(log: Path, first: int) -> float:
    """Samples/s between step ``first`` and the last logged step. The log's ``samples_per_s`` is
    cumulative (samples seen / seconds since the start), so seconds since the start are
    step x batch / rate; the batch cancels out of the ratio."""
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    start, last = next(r for r in rows if r["step"] == first), rows[-1]
    elapsed = lambda r: r["step"] / r["samples_per_s"]  # noqa: E731  (seconds / batch)
    return (last["step"] - start["step"]) / (elapsed(last) - elapsed(start))


def run_once(code: Path, args, flags: list[str]) -> float:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "actbert", "train", "--corpus", args.corpus, "--out", out,
                   "--init", str(Path(args.init).resolve()), *flags, "--steps", str(args.steps),
                   "--log-every", "1", "--checkpoint-every", str(10 * args.steps), "--json",
                   *shlex.split(args.extra)]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{code}: train failed: {done.stderr.strip().splitlines()[-1:]}")
        return rate_between(Path(out) / "train.jsonl", args.from_step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--init", required=True)
    parser.add_argument("--recipe", help="a train_config.json (default: INIT/train_config.json)")
    parser.add_argument("--code", action="append", help="repository checkouts to time (default: this one)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--from-step", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--extra", default="", help="more train options, for every checkout")
    args = parser.parse_args()
    recipe = json.loads(Path(args.recipe or Path(args.init) / "train_config.json").read_text())
    flags = recipe_flags(recipe)
    codes = [Path(c).resolve() for c in (args.code or [str(ROOT)])]
    rates: dict[str, list[float]] = {str(c): [] for c in codes}
    started = time.time()
    for _ in range(args.repeats):
        for code in codes:
            rates[str(code)].append(round(run_once(code, args, flags), 2))
            print(json.dumps({str(code): rates[str(code)][-1]}), file=sys.stderr, flush=True)
    report = {"recipe": flags, "extra": args.extra, "steps": args.steps, "from_step": args.from_step,
              "threads": args.threads, "load_average": os.getloadavg(),
              "wall_s": round(time.time() - started, 1),
              "samples_per_s": {c: {"runs": r, "median": statistics.median(r)} for c, r in rates.items()}}
    if len(codes) >= 2:
        first, last = (report["samples_per_s"][str(c)]["median"] for c in (codes[0], codes[-1]))
        report["ratio_last_to_first"] = round(last / first, 3)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
