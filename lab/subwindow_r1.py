"""Lever 2 of #25's visual-only line, measured before it is built: a clip scored by any part of it.

A visual-only step has no narration of its own, so its retrieval target is the narrated clip that
overlaps it most, a clip the step covers about half of (``lab/visual_r1.py``'s ``target_coverage``):
the clip's one video embedding is dominated by the step it was narrated about. Here each searched
clip also gets the embeddings of its ``--windows`` equal sub-windows (action features from the
library's action CNN on frames over the sub-window (``--action-sampling``), the clip's regions whose
frame lies inside it), and a clip scores ``max(whole, sub-windows)`` cosine against the query's text
embedding. Printed beside the whole-clip score (the served one), per checkpoint: R@1 / R@5 and hits
of the visual-only and of all queries.

Nothing is stored: the sub-window features are computed from the videos (``--videos``: the folder
of the corpus's ``<task_instance>.mp4``) for the evaluated split only.

    python lab/subwindow_r1.py --corpus LIB/corpus.jsonl --videos CORPUS/videos --split val CKPT [...]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from actbert import ActBertForPretraining
from actbert.corpus import read_corpus
from actbert.data import clip_inputs, collate, drop_regions
from actbert.evaluation.scorer import ModelScorer
from actbert.evaluation.tasks import load_split, retrieval_outcomes, retrieval_queries
from actbert.tokenizer import ActBertTokenizer
from indexer.features.actions import ActionExtractor
from indexer.features.sampling import SAMPLINGS
from indexer.features.video import probe, read_frames_at


def sub_windows(start: float, end: float, parts: int) -> list[tuple[float, float]]:
    """``parts`` equal, adjacent sub-windows of [start, end]."""
    edges = np.linspace(start, end, parts + 1)
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:])]


def sub_window_features(split, videos: Path, extractor: ActionExtractor, parts: int):
    """Per video of the split, a ``VideoFeatures`` whose clips are the sub-windows of its searched
    clips (``parts`` per clip, in clip order), and per searched clip its sub-clip indices."""
    out, owners = [], {}
    for v, clip_ids in enumerate(split.video_clips):
        feats = split.features[v]
        row = split.corpus.videos[v]
        path = videos / f"{row.task_instance}.mp4"
        info = probe(path)
        scale = extractor.short_side / min(info.height, info.width)
        size = (max(2, round(info.height * scale)), max(2, round(info.width * scale)))
        spans, rows, region_clip = [], [], []
        for c in clip_ids:
            clip = split.clips[c]
            owners[c] = []
            mine = np.flatnonzero(feats.region_clip == clip.index)
            for a, b in sub_windows(clip.start_sec, clip.end_sec, parts):
                inside = mine[(feats.region_time_sec[mine] >= a) & (feats.region_time_sec[mine] <= b)]
                if not len(inside):  # a window between two region frames: its nearest frame's
                    near = np.abs(feats.region_time_sec[mine] - 0.5 * (a + b))
                    inside = mine[near == near.min()] if len(mine) else mine
                owners[c].append((v, len(spans)))
                rows.extend(inside.tolist())
                region_clip.extend([len(spans)] * len(inside))
                spans.append((a, b))
        times = np.concatenate([extractor.sample_clip_times(a, b) for a, b in spans])
        frames = read_frames_at(path, times, size=size)
        action, _ = extractor(frames.reshape(len(spans), extractor.frames, *frames.shape[1:]))
        rows_arr = np.asarray(rows, dtype=np.int64)
        out.append(replace(
            feats, clip_start_sec=np.array([s[0] for s in spans]), clip_end_sec=np.array([s[1] for s in spans]),
            action_features=action.astype(np.float32), action_scores=None,
            region_features=feats.region_features[rows_arr], region_boxes_xyxy=feats.region_boxes_xyxy[rows_arr],
            region_classes=feats.region_classes[rows_arr], region_scores=feats.region_scores[rows_arr],
            region_clip=np.asarray(region_clip, dtype=np.int64), region_time_sec=feats.region_time_sec[rows_arr]))
    return out, owners


@torch.inference_mode()
def sub_window_vectors(model, tokenizer, sub_feats, owners, use_regions: bool) -> dict[int, np.ndarray]:
    """Per searched clip, (parts, D) video embeddings of its sub-windows (the video-only forward
    ``ModelScorer`` uses for the whole clip)."""
    ids = torch.tensor([[tokenizer.cls_id, tokenizer.sep_id]])
    vectors = {}
    for c, subs in owners.items():
        batch = collate([clip_inputs(sub_feats[v], [j], model.config.max_regions) for v, j in subs])
        batch.pop("region_classes")
        if not use_regions:
            batch = drop_regions(batch)
        out = model.actbert(text_ids=ids, text_mask=torch.ones_like(ids), **batch)
        vectors[c] = model.align.embed_video(out.pooled["action"], out.pooled["region"]).float().numpy()
    return vectors


def recalls(grid: np.ndarray, queries, rows: list[int]) -> dict:
    """R@1 / R@5 (percent) and hits at 1 of ``rows``' queries, ranked as the evaluation ranks
    (``retrieval_outcomes``: stable ties)."""
    ranks = retrieval_outcomes(grid, [q.target for q in queries])[rows]
    return {"r1": round(100 * float((ranks < 1).mean()), 1), "r5": round(100 * float((ranks < 5).mean()), 1),
            "hits": int((ranks < 1).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--videos", required=True, help="folder of the corpus's <task_instance>.mp4")
    parser.add_argument("--split", default="val")
    parser.add_argument("--windows", type=int, default=2, help="sub-windows per clip")
    parser.add_argument("--action-sampling", choices=SAMPLINGS, default="spread",
                        help="frames of each sub-window for the action CNN (the library's own sampling)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-regions", action="store_true", help="score the checkpoints without regions")
    parser.add_argument("checkpoints", nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = load_split(read_corpus(args.corpus), args.split)
    queries = retrieval_queries(split)
    texts = [q.description for q in queries]
    visual = [i for i, q in enumerate(queries) if q.narrated is False]
    everything = list(range(len(queries)))
    extractor = ActionExtractor.from_preset("fast", sampling=args.action_sampling)
    sub_feats, owners = sub_window_features(split, Path(args.videos), extractor, args.windows)
    out = {"split": args.split, "windows": args.windows, "action_sampling": args.action_sampling,
           "queries": len(queries), "visual_only": len(visual), "systems": {}}
    clips = list(range(len(split.clips)))
    for path in args.checkpoints:
        model = ActBertForPretraining.from_pretrained(path).eval()
        tokenizer = ActBertTokenizer()
        scorer = ModelScorer(model, tokenizer, split, not args.no_regions, 64, "cpu")
        with torch.inference_mode():
            text = scorer.text_embeddings(texts)
            whole = np.stack([v[2] for v in scorer._video_outputs(clips)])
        subs = sub_window_vectors(model, tokenizer, sub_feats, owners, not args.no_regions)
        whole_grid = text @ whole.T
        sub_grid = np.stack([(text @ subs[c].T).max(1) for c in clips], 1)
        best = np.maximum(whole_grid, sub_grid)
        out["systems"][path] = {
            name: {"visual_only": recalls(grid, queries, visual), "all": recalls(grid, queries, everything)}
            for name, grid in (("whole", whole_grid), ("max_whole_and_windows", best),
                               ("windows_only", sub_grid), ("mean_whole_and_windows_max", 0.5 * (whole_grid + sub_grid)))}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
