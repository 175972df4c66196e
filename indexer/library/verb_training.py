"""The paper's verb classifier trained on a library: action features of the train split -> verbs
of the narration; the model goes to ``LIB/models/verbs`` and every clip's top verbs to the catalog
(``predicted_verbs``, the clip inspector's "verb classifier" track). ``indexer train-actions`` runs it."""

from __future__ import annotations

import json

import numpy as np
import torch

from actbert.data import VideoFeatures
from indexer.features.verb_classifier import (
    predict_verbs,
    save_verb_classifier,
    top1_hits,
    train_verb_classifier,
)
from indexer.features.verbs import VerbVocabulary, multi_hot_batch
from indexer.library.export import export_corpus
from indexer.library.store import Library


def clip_table(library: Library) -> tuple[list[int], np.ndarray, list[list[str]], list[str | None]]:
    """Catalog clip ids with their action features, narration verbs and split, in catalog order."""
    ids, feats, verbs, splits = [], [], [], []
    for row in library.catalog.videos("done"):
        features = VideoFeatures.load(library.file(row["feature_path"]))
        for clip in library.catalog.clips_of(row["video_id"]):
            ids.append(clip["id"])
            feats.append(features.action_features[clip["clip_index"]])
            verbs.append(json.loads(clip["verbs"]))
            splits.append(row["split"])
    if not ids:
        raise ValueError(f"{library.root} has no ingested clips")
    return ids, np.stack(feats), verbs, splits


def train_actions(library: Library, epochs: int = 100, seed: int = 0) -> dict:
    """The paper's verb classifier on the action features, trained on the train split (all videos
    when the library has no splits) and scored on the held-out clips beside the majority-class
    baseline. Every clip's top verbs are stored in the catalog (``predicted_verbs``)."""
    export_corpus(library)  # builds the verb vocabulary into the manifest
    verbs_list = library.manifest.verbs
    if not verbs_list:
        raise ValueError(f"{library.root}: no verb occurs often enough in the narrations")
    vocab = VerbVocabulary(tuple(verbs_list), tuple(1 for _ in verbs_list))
    ids, feats, verbs, splits = clip_table(library)
    targets, has_verb = multi_hot_batch(verbs, vocab)
    has_splits = any(s is not None for s in splits)
    train = np.array([s == "train" or not has_splits for s in splits])
    held_out = np.array([s in ("val", "test") for s in splits]) & has_verb
    classifier, report = train_verb_classifier(
        feats[train], targets[train], has_verb[train], val_fraction=0.0 if has_splits else 0.2,
        epochs=epochs, seed=seed)
    if held_out.any():
        with torch.no_grad():
            scores = classifier(torch.from_numpy(feats[held_out])).numpy()
        majority = int(np.argmax(targets[train & has_verb].sum(0)))
        report.update(held_out_clips=int(held_out.sum()),
                      held_out_top1=float(top1_hits(scores, targets[held_out]).mean()),
                      held_out_majority_top1=float((targets[held_out, majority] > 0).mean()))
    actions = library.manifest.action_extractor
    save_verb_classifier(library.root / "models" / "verbs", classifier, vocab.verbs,
                         actions.get("version", actions.get("name")), report)
    predictions = predict_verbs(classifier, feats, top_k=3)
    library.catalog.set_predicted_verbs(
        {cid: [(vocab.verbs[i], round(p, 4)) for i, p in pred] for cid, pred in zip(ids, predictions)})
    return {"verbs": len(vocab), **report}
