"""Pretraining samples -> batches: the per-sample masking and matching negatives of ``train``.

Every draw comes from a generator seeded by (seed, epoch, sample index), so a sample is masked the
same way in every process, whatever the number of ranks.
"""

from __future__ import annotations

import numpy as np
import torch

from ..corpus import Sample
from ..data import SEP_TOKEN, collate, drop_regions
from ..tokenizer import ActBertTokenizer
from .masking import mask_features, mask_tokens
from .objectives import PretrainingBatch


def sample_seed(*parts: int) -> int:
    """A 63-bit seed derived from (seed, epoch, sample index), the same in every process."""
    return int(np.random.SeedSequence(list(parts)).generate_state(2, np.uint64)[0] >> np.uint64(1))


MATCH_ON = ("clean", "masked")


class Collator:
    """Samples -> a ``PretrainingBatch``. Each sample's masking and whether its video is swapped
    for its negative (the matching objective) come from a generator seeded by (seed, epoch, sample
    index). The text of a sample is its clips' narrations, ``[CLS] s_0 [SEP] s_1 [SEP] ...`` with
    segment id = clip index (``ActBertTokenizer.encode_groups``).

    ``match_on="clean"`` (default): the masked-modelling input pairs every text with its own video
    (every row carries targets) and the matching head judges a separate UNMASKED input in which
    half of the videos are swapped for the negative, as UNITER, ALBEF and BLIP do; the paper masks
    the pairs it matches, which here kept the matching head at chance (lab/matching.py).
    ``match_on="masked"`` is the paper's single masked input, whose swapped rows carry no masked-
    modelling targets (their words do not describe their video). In both, every video input (its
    features, masks, locations, positions, segments and tokens) is the collated SHOWN video, and
    ``clean`` (the alignment loss' input) pairs each text with its own unmasked video.
    """

    def __init__(self, tokenizer: ActBertTokenizer, seed: int, use_regions: bool = True,
                 match_on: str = "clean") -> None:
        if match_on not in MATCH_ON:
            raise ValueError(f"match_on must be one of {MATCH_ON}, got {match_on!r}")
        self.tok = tokenizer
        self.seed = seed
        self.epoch = 0
        self.use_regions = use_regions
        self.match_on = match_on

    def _video(self, videos: list) -> dict[str, torch.Tensor]:
        video = collate(videos)
        return drop_regions(video) if not self.use_regions else video

    def __call__(self, items: list[tuple[int, Sample, Sample]]) -> PretrainingBatch:
        gens = [torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, i))
                for i, _, _ in items]
        swapped = [bool(torch.rand(1, generator=g) < 0.5) for g in gens]
        enc = self.tok.encode_groups([list(positive.sentences) for _, positive, _ in items])
        text = {"text_ids": enc.ids, "text_mask": enc.mask, "token_type_ids": enc.segments}
        own = self._video([positive.video for _, positive, _ in items])
        shown = self._video([(negative if swap else positive).video
                             for (_, positive, negative), swap in zip(items, swapped)])
        own_classes, shown_classes = own.pop("region_classes"), shown.pop("region_classes")
        clean = {**text, **own}
        masked_on_shown = self.match_on == "masked"
        video = shown if masked_on_shown else own
        ids, text_labels, action, action_sel, region, region_sel = [], [], [], [], [], []
        for b, g in enumerate(gens):
            i, lab = mask_tokens(enc.ids[b:b + 1], enc.mask[b:b + 1], g, mask_id=self.tok.mask_id,
                                 vocab_size=self.tok.vocab_size, special_ids=self.tok.special_ids)
            a, a_sel = mask_features(video["action_features"][b:b + 1], video["action_mask"][b:b + 1], g)
            r, r_sel = mask_features(video["region_features"][b:b + 1], video["region_mask"][b:b + 1], g,
                                     skip_first=True,
                                     exclude=video["region_tokens"][b:b + 1] == SEP_TOKEN)
            if masked_on_shown and swapped[b]:  # mismatched: no masked-modelling targets
                lab, a_sel, r_sel = torch.full_like(lab, -1), torch.full_like(a_sel, -1), torch.full_like(r_sel, -1)
            for store, value in ((ids, i), (text_labels, lab), (action, a), (action_sel, a_sel),
                                 (region, r), (region_sel, r_sel)):
                store.append(value)
        num_actions = video["action_mask"].shape[1]
        own_targets = torch.zeros(len(items), num_actions, items[0][1].verb_targets.shape[1])
        for b, (_, positive, _) in enumerate(items):
            own_targets[b, : len(positive.verb_targets)] = positive.verb_targets
        verb_targets = own_targets.clone()
        if masked_on_shown:  # a swapped row's words do not describe the video it shows
            verb_targets[torch.tensor(swapped, dtype=torch.bool)] = 0.0
        inputs = {**text, **video, "text_ids": torch.cat(ids), "action_features": torch.cat(action),
                  "region_features": torch.cat(region)}
        return PretrainingBatch(
            inputs=inputs, text_labels=torch.cat(text_labels), action_targets=verb_targets,
            action_selected=torch.cat(action_sel) == 1,
            region_targets=shown_classes if masked_on_shown else own_classes,
            region_labels=torch.cat(region_sel)[:, 1:], match_labels=torch.tensor([int(x) for x in swapped]),
            clean=clean, match_inputs=None if masked_on_shown else {**text, **shown},
            clean_action_targets=own_targets)
