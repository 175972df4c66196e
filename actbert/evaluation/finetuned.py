"""A fine-tuned model as the evaluation reads it: the output folder of ``actbert finetune``
(``actbert.finetuning``), its format and its reader.

The folder holds the fine-tuned model (``config.json`` + ``model.safetensors``, as
``save_pretrained``), ``head.safetensors`` for segmentation's linear classifier, and
``finetune.json``: the task, ``"protocol": "finetuned"``, the base checkpoint, the system name the
evaluation reports (``actbert_finetuned``; ``actbert_no_regions_finetuned`` for the no-regions
model), the label names (segmentation), the train and val video ids, the val figure of every epoch
and the chosen one. ``actbert evaluate --finetuned DIR`` reports the model on the evaluated split
beside the zero-shot and probe rows (``load_finetuned``, ``FinetunedModel``), and refuses one that
trained or validated on an evaluated video. Nothing is pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..model import ActBertForPretraining
from ..tokenizer import ActBertTokenizer
from .scorer import ModelScorer, load_checkpoint
from .tasks import SplitClips

FORMAT = "actbert-finetuned-1"
RECORD = "finetune.json"
HEAD = "head.safetensors"
TASKS = ("segmentation", "videoqa", "retrieval")  # the paper's fine-tuned protocols (section 4.2)
RECORD_KEYS = ("format", "task", "system", "use_regions", "labels", "train_video_ids", "val_video_ids")


def save(directory: str | Path, model: ActBertForPretraining, head, record: dict) -> None:
    """The output folder: model (safetensors), head (safetensors) and the record (JSON)."""
    directory = Path(directory)
    model.save_pretrained(directory)
    if head is not None:
        save_file({k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()},
                  str(directory / HEAD))
    (directory / RECORD).write_text(json.dumps(record, indent=1))


@dataclass
class FinetunedModel:
    """A fine-tuned output folder, loaded for scoring an evaluated split."""

    directory: str
    record: dict
    model: ActBertForPretraining
    head: torch.nn.Linear | None

    @property
    def task(self) -> str:
        return self.record["task"]

    @property
    def system(self) -> str:
        return self.record["system"]

    def scorer(self, tok: ActBertTokenizer, split: SplitClips, batch_size: int = 64,
               device: str = "cpu") -> ModelScorer:
        return ModelScorer(self.model, tok, split, self.record["use_regions"], batch_size, device)

    @torch.no_grad()
    def segment(self, tok: ActBertTokenizer, split: SplitClips, clips, labels: list[str]) -> np.ndarray:
        """Label index (in ``labels``, the evaluation's list) per clip; a label the fine-tuning never
        had maps to background (index 0)."""
        features = self.scorer(tok, split).visual_features(list(clips))
        own = self.head(torch.as_tensor(features, dtype=torch.float32)).argmax(1).numpy()
        index = {name: i for i, name in enumerate(labels)}
        return np.array([index.get(self.record["labels"][i], 0) for i in own], np.int64)


def load_finetuned(directory: str | Path, held: SplitClips, device: str = "cpu") -> FinetunedModel:
    """A ``finetune`` output folder; an error when it trained or validated on an evaluated video."""
    directory = Path(directory)
    path = directory / RECORD
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no fine-tuning record (write it with `actbert finetune`)")
    record = json.loads(path.read_text())
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("task") not in TASKS \
            or any(key not in record for key in RECORD_KEYS):
        raise ValueError(f"{path}: not an {FORMAT} record")
    seen = set(record["train_video_ids"]) | set(record["val_video_ids"])
    leaked = sorted(seen & {v.video_id for v in held.corpus.videos})
    if leaked:
        raise ValueError(f"{directory}: fine-tuned on videos of the evaluated split {held.name!r}: "
                         f"{leaked[:5]}")
    head = None
    if record["task"] == "segmentation":
        weights = load_file(str(directory / HEAD))
        head = torch.nn.Linear(weights["weight"].shape[1], weights["weight"].shape[0])
        head.load_state_dict(weights)
        head.eval()
    return FinetunedModel(str(directory), record, load_checkpoint(directory, held, device), head)
