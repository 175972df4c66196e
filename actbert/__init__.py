"""ActBERT (Zhu & Yang, CVPR 2020) in PyTorch: three streams (text, action, region) fused by a
tangled transformer, with pretraining heads, observable attention and checkpoint converters."""

from .config import ActBertConfig, StreamConfig, TangledConfig
from .model import ActBertForPretraining, ActBertModel, ActBertOutput
from .tangled import AttentionMap

__all__ = ["ActBertConfig", "StreamConfig", "TangledConfig", "ActBertModel", "ActBertForPretraining",
           "ActBertOutput", "AttentionMap"]
