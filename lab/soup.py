"""A uniform model soup (Wortsman et al. 2022): every float tensor the mean of the same tensor in
N checkpoints of one architecture (fine-tunes of one init: the soup stays in their basin).

    python lab/soup.py OUT CHECKPOINT CHECKPOINT [...]

Each checkpoint is a save_pretrained directory or a shipped copy (float16 deltas over MiniLM:
``from_pretrained`` reads both). OUT is a float32 save_pretrained directory with the first
checkpoint's config; ship it with ``actbert ship OUT DEST``. Integer buffers (positions, counts)
must agree and are kept.
"""

from __future__ import annotations

import argparse
import json

import torch

from actbert import ActBertForPretraining


def soup(checkpoints: list[str]) -> ActBertForPretraining:
    models = [ActBertForPretraining.from_pretrained(c) for c in checkpoints]
    states = [m.state_dict() for m in models]
    if any(s.keys() != states[0].keys() for s in states):
        raise SystemExit("the checkpoints have different tensors: not one architecture")
    mean = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            # float64: the mean of equal float32 values is that value exactly (a frozen layer stays
            # equal to its init, so `actbert ship` still skips what equals the packaged MiniLM)
            mean[key] = torch.stack([s[key].double() for s in states]).mean(0).to(first.dtype)
        else:
            if any(not torch.equal(s[key], first) for s in states):
                raise SystemExit(f"integer tensor {key} differs between the checkpoints")
            mean[key] = first
    models[0].load_state_dict(mean)
    return models[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("checkpoints", nargs="+")
    args = p.parse_args()
    if len(args.checkpoints) < 2:
        raise SystemExit("a soup needs two checkpoints or more")
    soup(args.checkpoints).save_pretrained(args.out)
    print(json.dumps({"out": args.out, "checkpoints": args.checkpoints}))


if __name__ == "__main__":
    main()
