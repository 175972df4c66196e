"""One training corpus from two libraries' corpora (#25, lead 3: more data).

The first corpus is kept as it is (its train / val / test splits: the evaluation's val and test stay
the same videos); every video of the second becomes train, its ids and task instances prefixed so
they cannot meet the first's. Feature paths become absolute (the two libraries lie apart); the
header (verbs, region classes) is the first's, and the region classes must agree.

    python lab/merge_corpora.py SEED0/lib/corpus.jsonl SEED1/lib/corpus.jsonl OUT/corpus.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def absolute_features(video: dict, corpus: Path) -> str:
    path = Path(video["features"])
    return str(path if path.is_absolute() else (corpus.parent / path).resolve())


def merge(first: Path, second: Path, out: Path, prefix: str = "s1-") -> tuple[int, int]:
    """Write the merged corpus; returns (videos kept from ``first``, videos added as train)."""
    lines1, lines2 = first.read_text().splitlines(), second.read_text().splitlines()
    head1, head2 = json.loads(lines1[0]), json.loads(lines2[0])
    if head1.get("region_classes") != head2.get("region_classes"):
        raise SystemExit(f"{first} and {second} have different region classes")
    rows = [json.dumps({**head1, "library": None, "merged_from": [str(first), str(second)]})]
    for line in lines1[1:]:
        video = json.loads(line)
        rows.append(json.dumps({**video, "features": absolute_features(video, first)}))
    for line in lines2[1:]:
        video = json.loads(line)
        rows.append(json.dumps({**video, "features": absolute_features(video, second), "split": "train",
                                "video_id": prefix + video["video_id"],
                                "task_instance": prefix + video["task_instance"]}))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(rows) + "\n")
    return len(lines1) - 1, len(lines2) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="kept as it is (its splits)")
    parser.add_argument("second", type=Path, help="every video becomes train")
    parser.add_argument("out", type=Path)
    parser.add_argument("--prefix", default="s1-")
    args = parser.parse_args()
    kept, added = merge(args.first, args.second, args.out, args.prefix)
    print(f"{kept} videos of {args.first} + {added} train videos of {args.second} -> {args.out}")


if __name__ == "__main__":
    main()
