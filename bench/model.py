"""Model throughput: forward (text, video) pairs per second. Prints one JSON object.

CPU: the ``mini`` and ``paddle`` sizes at batch 8, with and without attention capture.
CUDA (when present): the ``paddle`` size in bf16 at batch 256 beside a plain BERT-base encoder
(12 x 768 post-LN layers, our own BertLayer) at length 128 in the same run, with the FLOP rate of
each from ``torch.utils.flop_counter`` (the target: ActBERT at >= 60% of BERT-base's FLOP rate).

Usage: python bench/model.py [--quick] [--gpu-only]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from actbert import ActBertConfig, ActBertForPretraining
from actbert.embeddings import add_global_region
from actbert.layers import BertLayer, mask_to_bias

TEXT_LEN, ACTIONS, REGIONS = 36, 5, 36  # the released model's lengths (+ 1 global region)


def inputs(config: ActBertConfig, batch: int, device: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (batch, TEXT_LEN), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    region, loc, region_mask = add_global_region(
        torch.rand(batch, REGIONS, config.region.feature_size, generator=g),
        torch.rand(batch, REGIONS, 5, generator=g), torch.ones(batch, REGIONS, dtype=torch.long))
    batch_inputs = {
        "text_ids": ids, "text_mask": torch.ones_like(ids),
        "action_features": torch.rand(batch, ACTIONS, config.action.feature_size, generator=g),
        "action_mask": torch.ones(batch, ACTIONS, dtype=torch.long),
        "region_features": region, "region_locations": loc, "region_mask": region_mask,
    }
    return {k: v.to(device) for k, v in batch_inputs.items()}


def timed(fn, repeats: int, device: str) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def flops_per_item(module, make_args) -> float:
    """Forward FLOPs for one batch item, counted on a batch of 2 on the CPU."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(**make_args(2))
    return counter.get_total_flops() / 2


class BertBase(torch.nn.Module):
    """A plain BERT-base encoder (embeddings excluded) built from our BertLayer."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(BertLayer(768, 12, 3072) for _ in range(12))

    def forward(self, hidden, mask):
        bias = mask_to_bias(mask, hidden.dtype)
        for layer in self.layers:
            hidden, _ = layer(hidden, bias)
        return hidden


def cpu_section(repeats: int) -> dict:
    torch.manual_seed(0)
    result = {}
    for preset in ("mini", "paddle"):
        model = ActBertForPretraining(ActBertConfig.from_name(preset)).eval()
        batch = 8
        x = inputs(model.config, batch, "cpu")
        entry = {"batch": batch}
        for capture in (False, True):
            with torch.no_grad():
                seconds = timed(lambda: model(**x, output_attentions=capture), repeats, "cpu")
            entry["pairs_per_s" + ("_with_attention" if capture else "")] = round(batch / seconds, 2)
        entry["attention_capture_cost"] = round(entry["pairs_per_s"] / entry["pairs_per_s_with_attention"], 3)
        entry["gflops_per_pair"] = round(flops_per_item(model, lambda b: inputs(model.config, b, "cpu")) / 1e9, 3)
        result[preset] = entry
    return result


def gpu_section(repeats: int, batch: int = 256, compile_models: bool = False) -> dict:
    torch.manual_seed(0)
    model = ActBertForPretraining(ActBertConfig.from_name("paddle")).eval()
    bert = BertBase().eval()
    actbert_flops = flops_per_item(model, lambda b: inputs(model.config, b, "cpu"))
    bert_len = 128
    bert_args = lambda b, d="cpu": {"hidden": torch.randn(b, bert_len, 768, device=d),  # noqa: E731
                                     "mask": torch.ones(b, bert_len, device=d)}
    bert_flops = flops_per_item(bert, bert_args)
    model, bert = model.cuda(), bert.cuda()
    if compile_models:  # both models alike, so the comparison stays fair
        model, bert = torch.compile(model), torch.compile(bert)
    x = inputs(model.config, batch, "cuda")
    y = bert_args(batch, "cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        act_s = timed(lambda: model(**x), repeats, "cuda")
        act_s_attn = timed(lambda: model(**x, output_attentions=True), repeats, "cuda")
        bert_s = timed(lambda: bert(**y), repeats, "cuda")
    act_rate = actbert_flops * batch / act_s
    bert_rate = bert_flops * batch / bert_s
    return {
        "device": torch.cuda.get_device_name(), "dtype": "bfloat16", "batch": batch,
        "torch_compile": compile_models,
        "paddle_pairs_per_s": round(batch / act_s, 1),
        "paddle_pairs_per_s_with_attention": round(batch / act_s_attn, 1),
        "paddle_tflops_per_s": round(act_rate / 1e12, 1),
        "bert_base_len128_sequences_per_s": round(batch / bert_s, 1),
        "bert_base_tflops_per_s": round(bert_rate / 1e12, 1),
        "flop_rate_ratio_actbert_over_bert": round(act_rate / bert_rate, 3),
        "target_ratio": 0.6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--gpu-only", action="store_true")
    parser.add_argument("--compile", action="store_true",
                        help="also time both models under torch.compile on the GPU")
    args = parser.parse_args()
    repeats = 3 if args.quick else 10
    report = {"torch": torch.__version__, "machine": platform.machine(),
              "cpu_threads": torch.get_num_threads(),
              "lengths": {"text": TEXT_LEN, "action": ACTIONS, "region": REGIONS + 1}}
    if not args.gpu_only:
        report["cpu"] = cpu_section(repeats)
    if torch.cuda.is_available():
        report["cuda"] = gpu_section(repeats)
        if args.compile:
            report["cuda_compiled"] = gpu_section(repeats, compile_models=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
