"""ActBERT (Zhu & Yang, CVPR 2020) in PyTorch: three streams (text, action, region) fused by a
tangled transformer, with pretraining heads, observable attention and checkpoint converters.

The model's names load on first use (PEP 562), so a torch-free part (``actbert.benchmarks``'
readers, which ``indexer.features.transcripts`` calls) imports without torch."""

from __future__ import annotations

import importlib

_HOME = {"ActBertConfig": "config", "StreamConfig": "config", "TangledConfig": "config",
         "ActBertModel": "model", "ActBertForPretraining": "model", "ActBertOutput": "model",
         "AttentionMap": "tangled"}
__all__ = list(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'actbert' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value
    return value
