"""The frozen text prefix's output, kept per text for the whole run (a throughput lever, issue 25).

With ``--freeze-text-layers`` the text embeddings and the text-only layers (those before the first
tangled block) are fixed and run without dropout (``train._prepare_model``), so the unmasked text
of a sample gives the same state at every step. The matching and alignment passes read that state
(``PretrainingObjective._clean_text_state``); this keeps it per text, so each sample's frozen
layers run once per run instead of once per epoch (the state of one text does not depend on the
other rows of its batch: a padded key gets softmax weight 0). The masked text differs every epoch
and still runs them. The first tangled block's projections of the state learn: they are computed
every time (``ActBertModel.adopt_text_state``).
"""

from __future__ import annotations

import torch

from ..layers import mask_to_bias
from ..model import ActBertModel
from ..states import TextState


def prefix_deterministic(model: ActBertModel) -> bool:
    """Whether the text prefix gives the same state for the same words every time: nothing in
    it learns and none of it draws dropout."""
    return model.text_prefix_frozen() and not any(m.training for p in model._text_prefix()
                                                  for m in p.modules())


class PrefixCache:
    """Text -> its frozen prefix state at the real positions, (n, D) each, up to ``limit_bytes``
    in all (texts beyond it are computed every time)."""

    def __init__(self, limit_bytes: int = 2 ** 30) -> None:
        self.rows: dict[bytes, torch.Tensor] = {}
        self.limit_bytes = limit_bytes
        self.bytes = 0

    @staticmethod
    def key(ids: torch.Tensor, types: torch.Tensor | None, length: int) -> bytes:
        """A text's identity (CPU tensors): its ids and segment ids at its ``length`` real positions."""
        key = ids[:length].numpy().tobytes()
        return key if types is None else key + b"|" + types[:length].numpy().tobytes()

    def state(self, model: ActBertModel, ids: torch.Tensor, mask: torch.Tensor,
              types: torch.Tensor | None = None) -> TextState:
        """``model.text_state(ids, mask, types, fixed_prefix=True)``, the prefix run only for the
        texts not seen before. Needs real positions first in every row (right padding) and a
        deterministic prefix (``prefix_deterministic``)."""
        cpu_ids, cpu_mask = ids.cpu(), mask.cpu()  # one copy each from a GPU
        cpu_types = None if types is None else types.cpu()
        counts = cpu_mask.sum(1)
        if not torch.equal(cpu_mask.bool(), torch.arange(mask.shape[1])[None] < counts[:, None]):
            raise ValueError("the prefix cache needs right-padded texts (real positions first)")
        lengths = counts.tolist()
        keys = [self.key(cpu_ids[b], None if cpu_types is None else cpu_types[b], n)
                for b, n in enumerate(lengths)]
        missing = sorted({k: b for b, k in enumerate(keys) if k not in self.rows}.values())
        fresh = {}
        if missing:
            rows = torch.tensor(missing, device=ids.device)
            width = max(lengths[b] for b in missing)
            computed = model.text_state(ids[rows, :width], mask[rows, :width],
                                        None if types is None else types[rows, :width],
                                        fixed_prefix=True).hidden
            for i, b in enumerate(missing):
                fresh[keys[b]] = computed[i, :lengths[b]].detach()
                if self.bytes + fresh[keys[b]].nbytes <= self.limit_bytes:
                    self.rows[keys[b]] = fresh[keys[b]].clone()
                    self.bytes += fresh[keys[b]].nbytes
        dtype = model.embeddings["action"].feature.weight.dtype
        hidden = torch.zeros(*ids.shape, model.config.text.hidden_size, dtype=dtype, device=ids.device)
        for b, k in enumerate(keys):
            hidden[b, :lengths[b]] = self.rows[k] if k in self.rows else fresh[k]
        return model.adopt_text_state(TextState(hidden, mask_to_bias(mask, dtype)))
