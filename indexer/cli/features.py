"""CLI commands about feature and index files: ``import-features`` (pre-extracted features into
the per-video format, ``indexer.features.feature_import``) and ``index-info``
(``indexer.index.files``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from indexer.errors import ClipIndexError
from indexer.features.feature_import import (
    read_action_features,
    read_bua_npz,
    read_bua_tsv,
    video_features_from_imports,
)
from indexer.index.files import FIELDS, fingerprint, load


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-features", help="write one video's pre-extracted features (action "
                                               ".npy + bottom-up-attention regions) as a feature file")
    p.add_argument("--video-id", required=True)
    p.add_argument("--actions", type=Path, required=True, help="(C, F) .npy of clip action features")
    times = p.add_mutually_exclusive_group(required=True)
    times.add_argument("--clip-times", type=Path, help="(C, 2) .npy of clip start/end seconds")
    times.add_argument("--window-sec", type=float, help="clips are consecutive windows of this length")
    p.add_argument("--regions", type=Path, nargs="*", default=[],
                   help="bottom-up-attention TSV files or per-frame .npz files")
    p.add_argument("--region-fps", type=float, default=1.0,
                   help="frames per second of the region images (image id = frame number)")
    p.add_argument("--out", type=Path, required=True, help="feature file to write (.safetensors)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_import_features)

    p = sub.add_parser("index-info", help="verify a saved clip index and print its manifest")
    p.add_argument("directory", type=Path, help="index directory (holds manifest.json)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=run_index_info)


def run_import_features(args: argparse.Namespace) -> int:
    clip_times = np.load(args.clip_times, allow_pickle=False) if args.clip_times else None
    actions, starts, ends = read_action_features(args.actions, clip_times, args.window_sec)
    records = []
    for path in args.regions:
        records += list(read_bua_tsv(path)) if path.suffix == ".tsv" else [read_bua_npz(path)]
    features = video_features_from_imports(args.video_id, actions, starts, ends, records,
                                           region_fps=args.region_fps)
    features.save(args.out)
    report = {"video_id": args.video_id, "out": str(args.out), "clips": int(features.num_clips),
              "regions": int(len(features.region_scores))}
    print(json.dumps(report) if args.json else
          f"import-features: {report['clips']} clips, {report['regions']} regions -> {args.out}")
    return 0


def run_index_info(args: argparse.Namespace) -> int:
    """Verify the index in ``args.directory`` (checksum, FAISS read, manifest agreement) and print it."""
    try:
        _, manifest = load(args.directory)
    except ClipIndexError as error:
        print(error, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(manifest, sort_keys=True))
    else:
        for key in FIELDS:
            value = manifest[key]
            print(f"{key}: {fingerprint(value) if isinstance(value, (dict, list)) else value}")
    return 0
