"""The demo models shipped in assets/ (assets/README.md): they load, fit the size budget, the
README's checksums are theirs, and the rerank policy beside the model was recorded for its weights."""

import hashlib
import re
from pathlib import Path

import pytest
import torch

from actbert.model import ActBertForPretraining
from actbert.rerank_policy import decide, read_policy

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SHIPPED = ("actbert", "actbert_no_regions")


def test_assets_fit_the_100_mb_budget():
    total = sum(p.stat().st_size for p in ASSETS.rglob("*") if p.is_file())
    assert total <= 100 * 2**20, f"assets/ holds {total / 2**20:.1f} MiB"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_and_matches_the_documented_checksum(name):
    folder = ASSETS / "demo" / name
    documented = re.search(rf"`{name}/model.safetensors` ([0-9a-f]{{64}})",
                           (ASSETS / "README.md").read_text()).group(1)
    assert hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() == documented
    model = ActBertForPretraining.from_pretrained(folder)
    assert model.config.extra["verbs"], "the model carries its verb vocabulary"
    # the delta rebuilt the frozen MiniLM part: no parameter is left at exactly zero
    assert all(p.abs().sum() > 0 for p in model.parameters() if p.dim() > 1)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_rerank_policy_was_recorded_for_the_shipped_weights():
    folder = ASSETS / "demo" / "actbert"
    policy = read_policy(folder)
    assert policy is not None and policy.split == "val"
    ordering = decide("auto", folder)
    assert "other weights" not in ordering.reason
    assert ordering.rerank == (policy.rerank_k if policy.rerank_helps else 0)
