"""The probes' ``raw_features`` system: the same probe on the features ActBERT is fed, without
ActBERT, so a probe figure can be credited to pretraining only by what it adds over its inputs.

- A clip's raw video feature (``RawFeatures.visual_features``): its I3D action feature
  concatenated with the mean of its region features, the regions the clip contract selects
  (``data.clip_inputs``, the scoring model's region limit; the mean is the contract's global
  region token). Segmentation's probe and the video-only verb probe read it as they read
  ActBERT's [ACT] hidden state ++ pooled region output.
- Video QA's linear probe scores (text, clip) pairs; ActBERT's reads the joint forward's fused
  output, where text and video already interact. A linear function of concatenated raw features
  cannot rank candidate texts by the clip (the clip's part is the same for every candidate), so
  the raw pair feature is the interaction itself: the outer product of the text's and the clip's
  raw features, each reduced to ``PAIR_DIMS`` principal components fitted on the train pairs
  (``BilinearPairs``). The text's raw feature is its MiniLM sentence embedding
  (``baselines.MiniLMEncoder``: the BERT that ActBERT's text stream starts from).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAIR_DIMS = 24


class RawFeatures:
    """Per-clip raw features of one split (``tasks.SplitClips``) under a region limit."""

    def __init__(self, split, max_regions: int) -> None:
        self.split, self.max_regions = split, max_regions

    def visual_features(self, clips: Sequence[int]) -> np.ndarray:
        """(C, F_action + F_region): action feature ++ mean region feature of each clip."""
        rows = []
        for c in clips:
            inputs = self.split.inputs(int(c), self.max_regions)
            rows.append(np.concatenate([inputs.action_features[0].numpy(),
                                        inputs.region_features[0].numpy()]))
        return np.stack(rows).astype(np.float64)


class Pca:
    """Mean and top-``dims`` principal axes of standardised rows (``project`` applies them)."""

    def __init__(self, x: np.ndarray, dims: int) -> None:
        x = np.asarray(x, np.float64)
        self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        _, _, vt = np.linalg.svd((x - self.mean) / self.std, full_matrices=False)
        self.axes = vt[:min(dims, len(vt))]

    def project(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float64) - self.mean) / self.std) @ self.axes.T


class BilinearPairs:
    """Pair features ``vec(pca_text(t) outer pca_video(v))`` (P, PAIR_DIMS**2); the axes come
    from the rows given at construction (the train pairs' texts and clips)."""

    def __init__(self, texts: np.ndarray, videos: np.ndarray, dims: int = PAIR_DIMS) -> None:
        self.text, self.video = Pca(texts, dims), Pca(videos, dims)

    def __call__(self, texts: np.ndarray, videos: np.ndarray) -> np.ndarray:
        t, v = self.text.project(texts), self.video.project(videos)
        return (t[:, :, None] * v[:, None, :]).reshape(len(t), -1)
