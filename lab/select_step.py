"""Pick the pretraining step on the val split. Prints one JSON object.

``actbert train --keep-every N`` leaves RUN/step-N models. For every step kept by both the full run
and its no-region ablation, this evaluates the pair on the VAL split (never test) with the real
``actbert evaluate`` and scores the step by the mean of the full model's figures that the demo
model is judged on: retrieval R@5 (all queries and visual-only), step localisation recall,
segmentation frame accuracy, matching ROC-AUC and masked-action top-1 (all in percent). The
ablation is taken at the same step (it is trained the same way). The step with the highest score
wins (ties: the later step).

Usage: python lab/select_step.py --corpus LIB/corpus.jsonl --full RUN --no-regions RUN2
       [--steps 500,1000] [--out FILE] [--reuse FILE] [--threads 1]

``--reuse FILE`` (an earlier output, e.g. the same --out) takes the rows of steps whose two model
files have the same sha256 as when they were evaluated, so an interrupted selection resumes.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

from actbert.atomic import atomic_write
from actbert.evaluation.evaluate import EvalConfig, evaluate
from actbert.evaluation.result import EvaluationResult
from actbert.rerank_policy import weights_digest

TASKS = ("retrieval", "step_localization", "segmentation", "matching", "masked_action")
# (task, metric) of the full model that the score averages.
SCORED = (("retrieval", "r5"), ("retrieval_visual_only", "r5"), ("step_localization", "recall"),
          ("segmentation", "frame_accuracy"), ("matching", "auc"), ("masked_action", "top1_masked"))


def kept_steps(run: Path) -> set[int]:
    return {int(m.group(1)) for p in run.glob("step-*")
            if (m := re.fullmatch(r"step-(\d+)", p.name)) and (p / "model.safetensors").is_file()}


def reusable_rows(path: Path | None) -> dict[tuple[int, str, str], dict]:
    if path is None or not path.is_file():
        return {}
    rows = json.loads(path.read_text()).get("steps", [])
    return {(r["step"], r["models"]["full"], r["models"]["no_regions"]): r
            for r in rows if "models" in r}


def write(path: Path, obj: dict) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj) + "\n"))


def figures_of(result: EvaluationResult, system: str) -> dict:
    return {f"{task}.{metric}": result.table(task)[system][metric] for task, metric in SCORED
            if metric in result.table(task).get(system, {})}


def score(result: EvaluationResult) -> tuple[float, dict]:
    figures = figures_of(result, "actbert")
    return statistics.fmean(figures.values()), figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--full", required=True, type=Path, help="the full model's run folder")
    parser.add_argument("--no-regions", required=True, type=Path, help="the ablation's run folder")
    parser.add_argument("--steps", help="comma-separated subset of the kept steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--reuse", type=Path, help="an earlier output: rows of unchanged models are kept")
    args = parser.parse_args(argv)
    steps = sorted(kept_steps(args.full) & kept_steps(args.no_regions))
    if args.steps:
        steps = [s for s in steps if str(s) in args.steps.split(",")]
    if not steps:
        parser.error(f"no step-N model kept by both {args.full} and {args.no_regions}")
    earlier = reusable_rows(args.reuse)
    rows = []
    for step in steps:
        models = {"full": weights_digest(args.full / f"step-{step}"),
                  "no_regions": weights_digest(args.no_regions / f"step-{step}")}
        if (step, models["full"], models["no_regions"]) in earlier:
            rows.append(earlier[step, models["full"], models["no_regions"]])
            print(json.dumps({"step": step, "reused": True}), file=sys.stderr)
            continue
        started = time.perf_counter()
        result = evaluate(EvalConfig(
            corpus=args.corpus, checkpoint=str(args.full / f"step-{step}"),
            ablation_checkpoint=str(args.no_regions / f"step-{step}"), split="val", tasks=TASKS,
            threads=args.threads, meteor=False))
        value, figures = score(result)
        rows.append({"step": step, "score": round(value, 2), **figures,
                     "no_regions": figures_of(result, "actbert_no_regions"),
                     "seconds": round(time.perf_counter() - started, 1), "models": models})
        print(json.dumps(rows[-1]), file=sys.stderr)
        if args.out:  # progress survives an interruption (--reuse takes it back)
            write(args.out, {"split": "val", "partial": True,
                              "steps": rows + [r for r in earlier.values() if r not in rows]})
    best = max(rows, key=lambda r: (r["score"], r["step"]))
    out = {"split": "val", "scored": [f"{t}.{m}" for t, m in SCORED], "steps": rows,
           "best_step": best["step"]}
    if args.out:
        write(args.out, out)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
