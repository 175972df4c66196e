"""What the Model page shows, read from files only (no model is loaded, nothing is recomputed):
for the library's model and its no-regions ablation (``library.json`` ``model`` and
``model_no_regions``), the config summary (``config.json``), the training record (``train.jsonl``,
``train_config.json``: ``curves.run_files``) and the evaluations ``actbert evaluate`` kept beside
the checkpoint (``evaluation_<split>.json``: ``actbert.evaluation.record``, each an
``EvaluationResult``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from actbert.checkpoint import CONFIG_NAME
from actbert.config import ActBertConfig
from actbert.evaluation.record import read_evaluations
from actbert.evaluation.result import EvaluationResult
from actbert.pretraining.curves import TrainingRun, training_run
from actbert.rerank_policy import weights_digest
from indexer.errors import LibraryError
from indexer.library.manifest import LibraryManifest

ROLES = (("model", "ActBERT"), ("model_no_regions", "no-regions ablation"))


@dataclass
class ModelCard:
    role: str                       # the library.json key: model, model_no_regions
    label: str
    checkpoint: Path
    summary: dict = field(default_factory=dict)   # preset, max_regions, match_input, ...
    problem: str | None = None      # why the config could not be read
    run: TrainingRun | None = None
    evaluations: dict[str, EvaluationResult] = field(default_factory=dict)   # split -> record
    stale: dict[str, bool] = field(default_factory=dict)         # split -> for other weights


def config_summary(checkpoint: Path) -> dict:
    """The model's config as the page shows it, from ``config.json`` (raises OSError, ValueError,
    TypeError or KeyError when it cannot be read)."""
    config = ActBertConfig.from_json((checkpoint / CONFIG_NAME).read_text())
    return {"preset": config.name, "max_regions": config.max_regions,
            "match_input": config.match_input, "kv_fusion": config.tangled.kv_fusion,
            "text layers": config.text.num_layers, "text hidden size": config.text.hidden_size,
            "verbs": list(config.extra.get("verbs") or [])}


def model_cards(root: str | Path, manifest: LibraryManifest) -> list[ModelCard]:
    """One card per model the library names (none when it names no model)."""
    cards = []
    for role, label in ROLES:
        entry = manifest.entry(role)
        if entry is None:
            continue
        try:
            checkpoint = entry.folder(root)
        except LibraryError as exc:  # a relative folder that leaves the library: never read
            cards.append(ModelCard(role, label, Path(entry.checkpoint), problem=str(exc)))
            continue
        card = ModelCard(role, label, checkpoint)
        try:
            card.summary = config_summary(checkpoint)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            card.problem = f"{checkpoint}: {exc}"
        card.run = training_run(role, checkpoint)
        card.evaluations = read_evaluations(checkpoint)
        card.stale = stale_splits(checkpoint, card.evaluations)
        cards.append(card)
    return cards


def stale_splits(checkpoint: Path, evaluations: dict[str, EvaluationResult]) -> dict[str, bool]:
    """{split: whether its record was made for other weights than the checkpoint's}."""
    if not evaluations:
        return {}
    digest = weights_digest(checkpoint)
    return {split: record.provenance.weights_sha256 not in (None, digest)
            for split, record in evaluations.items()}


def action_head_evidence(root: str | Path, manifest: LibraryManifest) -> str | None:
    """The Clip page's caption under the action head: what ``actbert evaluate`` recorded beside
    the library's model for its current weights (the test split first, else val) about the head
    as the page runs it (the action feature visible, no text: ``top1_video_only``), beside always
    answering the majority verb and the paper's masked setting. None when no such record exists.
    Reads only the model's evaluation records (not the whole card)."""
    if manifest.model is None:
        return None
    try:
        checkpoint = manifest.model.folder(root)
    except LibraryError:
        return None
    evaluations = read_evaluations(checkpoint)
    stale = stale_splits(checkpoint, evaluations)
    for split in ("test", "val"):
        record = evaluations.get(split)
        figures = record.table("masked_action") if record else {}
        own, majority = figures.get("actbert") or {}, figures.get("majority") or {}
        if stale.get(split, True) or "top1_video_only" not in own:
            continue
        text = (f"Held-out check ({split} split, `actbert evaluate`): ranked over the step "
                f"verbs, this head's first answer is the clip's step verb for "
                f"{own['top1_video_only']:.1f}% of clips, video only as shown here")
        if "top1_video_only" in majority:
            text += f" (always the majority verb: {majority['top1_video_only']:.1f}%)"
        if "top1_masked" in own:
            text += (f"; with the action masked and the narration as text (the pretraining "
                     f"task): {own['top1_masked']:.1f}%")
        return text + "."
    return None
