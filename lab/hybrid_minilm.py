"""Lab (#25, the hybrid lines): hybrid search with MiniLM over the narrations as its narration
signal, in place of BM25, measured on val before anything is built into search.

The served hybrid fuses the clip embeddings with BM25 over the narrations (``actbert.fusion_policy``).
BM25 matches words; MiniLM matches meaning, and on SynthKitchen MiniLM alone beats BM25 on all
queries. This runs ``actbert evaluate --tasks retrieval --split val`` on a copy of the checkpoint
(the val run writes its fusion and rerank policies beside the weights: the copy keeps the shipped
ones untouched) with the narration scorer that the hybrid fuses swapped: MiniLM's cosine, shifted to
be positive on clips with a narration and 0 on clips without one (the fusion counts a clip the
narration signal "finds" by a score > 0). The fusion grid is chosen on val exactly as for BM25. In
its output the ``bm25`` row is that MiniLM scorer; compare ``actbert_hybrid`` with ``minilm`` and
with ``actbert_vector``. (Session 41 built the semantic signal into search as a third ranking
beside BM25 rather than in its place: ``actbert.fusion_policy``'s ``semantic`` weight, chosen on
val with the rest of the fusion by ``actbert evaluate --split val``.)

    python lab/hybrid_minilm.py --corpus LIB/corpus.jsonl --checkpoint assets/demo/actbert > out.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from actbert.cli import main as actbert_main
from actbert.evaluation import runners


class NarratedMiniLM:
    """MiniLM's text-narration cosine + 2 (> 0) where the clip has a narration, else 0."""

    def __init__(self, minilm, narrations) -> None:
        self.minilm = minilm
        self.narrated = np.array([bool(n.strip()) for n in narrations])

    def __call__(self, texts, clips):
        scores = np.asarray(self.minilm(texts, clips), np.float64) + 2.0
        return np.where(self.narrated[np.asarray(clips)], scores, 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--threads", default="2")
    args = parser.parse_args()
    original = runners.Evaluation.baseline

    def baseline(self, name, split=None):
        if name != "bm25":
            return original(self, name, split)
        split = split or self.held
        key = ("bm25-as-minilm", split.name)
        if key not in self._scorers:
            self._scorers[key] = NarratedMiniLM(original(self, "minilm", split), split.narrations)
        return self._scorers[key]

    runners.Evaluation.baseline = baseline
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "model"
        shutil.copytree(args.checkpoint, copy)
        for policy in ("fusion_policy.json", "rerank_policy.json"):
            (copy / policy).unlink(missing_ok=True)
        code = actbert_main(["evaluate", "--corpus", args.corpus, "--checkpoint", str(copy),
                             "--tasks", "retrieval", "--split", "val", "--threads", args.threads,
                             "--json"])
        fusion = copy / "fusion_policy.json"
        if fusion.is_file():
            chosen = json.loads(fusion.read_text())
            print(json.dumps({k: chosen[k] for k in ("alpha", "gamma", "r1_all", "r5_visual_only",
                                                     "r5_visual_only_vector")}), file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
