"""Pretraining throughput: samples per second of a full training step. Prints one JSON object.

A step is what ``actbert train`` runs: the paper's four losses plus alignment
(``PretrainingObjective``), backward, AdamW update (fused), the layers packed on CPUs as the
trainer packs them; bf16 autocast on CUDA, fp32 on CPU; no layer frozen (a fresh model). Samples
are the paper's shape: K = 10 adjacent clips (10 action slots), 36 regions + the global token,
narrations of up to 64 word pieces, masked and paired with negatives by the real ``Collator``.
Features are random (throughput does not depend on their values). Two figures per preset:

- ``step``: batches collated and moved to the device beforehand (the model's own speed);
- ``loop``: collation on the CPU in the loop, as ``actbert train`` does with ``num_workers=0``.

Usage: python bench/pretrain.py [--presets mini,base] [--batch 64] [--steps 20] [--quick]
       [--vocab vocab.txt]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import torch

from actbert.model import build_model
from actbert.corpus import Sample
from actbert.data import ClipInputs
from actbert.pretraining.objectives import PretrainingObjective
from actbert.pretraining.train import Collator, TrainConfig, _to, adamw, pack_layers
from actbert.tokenizer import ActBertTokenizer

CLIPS, REGIONS, TEXT_TOKENS, VERBS, DETECTOR_CLASSES = 10, 36, 64, 64, 91
WORDS = ("crack the egg into the bowl then whisk the batter and pour it into the hot pan "
         "flip the pancake when bubbles form cut the tomato on the board add salt").split()


def sample(config, g: torch.Generator) -> Sample:
    """One random sample of the paper's shape."""
    per_clip = REGIONS // CLIPS
    regions = per_clip * CLIPS
    words = [WORDS[int(i)] for i in torch.randint(len(WORDS), (80,), generator=g)]
    video = ClipInputs(
        action_features=torch.rand(CLIPS, config.action.feature_size, generator=g),
        region_features=torch.rand(regions + 1, config.region.feature_size, generator=g),
        region_locations=torch.rand(regions + 1, 5, generator=g),
        region_positions=torch.arange(regions + 1) // per_clip,
        region_segments=torch.cat([torch.zeros(1, dtype=torch.long),
                                   torch.arange(regions) // per_clip]),
        region_classes=torch.softmax(torch.randn(regions, DETECTOR_CLASSES, generator=g), -1),
    )
    targets = torch.zeros(CLIPS, VERBS)
    targets[torch.arange(CLIPS), torch.randint(VERBS, (CLIPS,), generator=g)] = 1.0
    per_sentence = len(words) // CLIPS
    sentences = tuple(" ".join(words[j * per_sentence:(j + 1) * per_sentence]) for j in range(CLIPS))
    return Sample(sentences, video, targets, 0, None)


def bench_preset(preset: str, batch: int, steps: int, device: torch.device, tok) -> dict:
    torch.manual_seed(0)
    model = build_model(preset, text_init=None, action={"num_classes": VERBS},
                        region={"num_classes": DETECTOR_CLASSES}).to(device).train()
    pack_layers(model, device)  # as ``actbert train`` prepares a model
    objective = PretrainingObjective(model, True, tok.cls_id, tok.sep_id)
    optimizer = adamw(model.parameters(), TrainConfig(corpus="", out="", lr=1e-5), device)
    collator = Collator(tok, seed=0)
    g = torch.Generator().manual_seed(0)
    pool = [sample(model.config, g) for _ in range(2 * batch)]
    items = lambda k: [(k * batch + i, pool[i], pool[-1 - i]) for i in range(batch)]  # noqa: E731
    dtype = torch.bfloat16 if device.type == "cuda" else None

    def step(b) -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = objective(b)["total"]
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    ready = [_to(collator(items(k)), device) for k in range(4)]
    for k in range(3):  # warm-up (allocator, kernels, Adam state)
        step(ready[k % 4])
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = {"step": [], "loop": []}
    for k in range(steps):
        start = time.perf_counter()
        step(ready[k % 4])
        sync()
        times["step"].append(time.perf_counter() - start)
    for k in range(steps):
        start = time.perf_counter()
        step(_to(collator(items(k)), device))
        sync()
        times["loop"].append(time.perf_counter() - start)
    step_s, loop_s = statistics.median(times["step"]), statistics.median(times["loop"])
    entry = {
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "batch": batch, "steps_timed": steps,
        "precision": "bf16" if dtype is not None else "fp32",
        "step_samples_per_s": round(batch / step_s, 1),
        "loop_samples_per_s": round(batch / loop_s, 1),
        "step_s_median": round(step_s, 4), "loop_s_median": round(loop_s, 4),
    }
    if device.type == "cuda":
        entry["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", default="mini,base")
    parser.add_argument("--batch", type=int, help="default: 64 on CUDA, 4 on CPU")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 timed steps")
    parser.add_argument("--vocab", help="a BERT vocab.txt (default: the packaged MiniLM one)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch = args.batch or (64 if device.type == "cuda" else 4)
    steps = 3 if args.quick else args.steps
    tok = ActBertTokenizer(args.vocab, max_length=TEXT_TOKENS)
    report = {"torch": torch.__version__, "machine": platform.machine(),
              "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "cpu_threads": torch.get_num_threads(),
              "shape": {"clips": CLIPS, "regions": REGIONS + 1, "text_tokens_max": TEXT_TOKENS}}
    for preset in args.presets.split(","):
        report[preset] = bench_preset(preset, batch, steps, device, tok)
        print(json.dumps({preset: report[preset]}), file=sys.stderr, flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
