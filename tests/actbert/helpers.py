"""Small builders shared by the actbert tests."""

import torch

from actbert.config import ActBertConfig
from actbert.embeddings import add_global_region


def variant_config(kv_fusion="stack", layered=False, **changes) -> ActBertConfig:
    """The tiny preset with ``kv_fusion``; ``layered``: a text layer after the last tangled block
    and an action layer before the first (a video-only layer), so every branch of the pooled
    forward runs; ``changes``: other top-level fields."""
    base = ActBertConfig.from_name("tiny").to_dict()
    cfg = {**base, "tangled": {**base["tangled"], "kv_fusion": kv_fusion}, **changes}
    if layered:
        cfg["text"] = {**base["text"], "num_layers": 3}
        cfg["action"] = {**base["action"], "num_layers": 3}
        cfg["tangled"]["layers_before"] = {**base["tangled"]["layers_before"], "action": [1, 2]}
    return ActBertConfig.from_dict(cfg)


def random_inputs(config, batch=2, text_len=9, actions=4, regions=6, seed=0, pad=True):
    """A batch of valid random inputs (global region token included), padded when ``pad``."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 2000, (batch, text_len), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    text_mask = torch.ones(batch, text_len, dtype=torch.long)
    action_mask = torch.ones(batch, actions, dtype=torch.long)
    region_mask = torch.ones(batch, regions, dtype=torch.long)
    if pad and batch > 1:
        text_mask[1, -3:] = 0
        ids[1, -3:] = 0
        ids[1, -4] = 102
        action_mask[1, -1:] = 0
        region_mask[1, -2:] = 0
    action = torch.rand(batch, actions, config.action.feature_size, generator=g)
    region = torch.rand(batch, regions, config.region.feature_size, generator=g)
    xy = torch.rand(batch, regions, 2, generator=g) * 0.5
    wh = torch.rand(batch, regions, 2, generator=g) * 0.5
    loc = torch.cat([xy, xy + wh, (wh[..., :1] * wh[..., 1:])], -1)
    region, loc, region_mask = add_global_region(region, loc, region_mask)
    return {
        "text_ids": ids, "text_mask": text_mask, "action_features": action * action_mask[..., None],
        "action_mask": action_mask, "region_features": region * region_mask[..., None],
        "region_locations": loc, "region_mask": region_mask,
    }
