"""A checkpoint whose files lie about their sizes is refused with one line, before any allocation
the weights file cannot justify (issue 29: a 2 KB config.json with 10,000 layers, a 20M-word
vocabulary, a corrupt safetensors header, weights of another config)."""

from __future__ import annotations

import json

import pytest
import torch

from actbert import ActBertConfig, ActBertForPretraining
from actbert.checkpoint import CheckpointError, least_parameters
from actbert.config import PRESETS


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    ActBertForPretraining(ActBertConfig.from_name("tiny")).save_pretrained(tmp_path / "ckpt")
    return tmp_path / "ckpt"


def _edit_config(directory, **streams) -> None:
    config = json.loads((directory / "config.json").read_text())
    for stream, changes in streams.items():
        config[stream].update(changes)
    (directory / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("config", [
    *[pytest.param(lambda name=name: ActBertConfig.from_name(name), id=name) for name in PRESETS],
    pytest.param(lambda: ActBertConfig.from_name("tiny", action={
        "use_position_embedding": False, "use_segment_embedding": False, "use_token_embedding": False}),
        id="tiny-without-visual-embeddings"),
])
def test_least_parameters_is_a_lower_bound_of_the_real_model(config):
    config = config()
    with torch.device("meta"):
        model = ActBertForPretraining(config)
    assert 0 < least_parameters(config) <= sum(t.numel() for t in model.state_dict().values())


@pytest.mark.parametrize("changes", [{"num_layers": 400}, {"num_classes": 3_000_000}],
                         ids=["400 layers", "3M-word vocabulary"])
def test_a_config_larger_than_its_weights_is_refused_before_building(saved, changes):
    _edit_config(saved, text=changes)
    with pytest.raises(CheckpointError, match="declares at least .* parameters but the weights hold"):
        ActBertForPretraining.from_pretrained(saved)


def test_weights_of_other_sizes_are_one_line(saved):
    _edit_config(saved, text={"intermediate_size": 72})
    with pytest.raises(CheckpointError, match=r"weights do not have config.json's sizes, first "
                                              r"actbert\..* \[64\] \(config: \[72\]\)") as info:
        ActBertForPretraining.from_pretrained(saved)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("header", [b"\xff" * 7 + b"\x7f{", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}  ", b""],
                         ids=["huge header length", "header not JSON", "empty file"])
def test_a_corrupt_safetensors_header_is_one_line(saved, header):
    (saved / "model.safetensors").write_bytes(header)
    with pytest.raises(CheckpointError, match="is not a readable safetensors file") as info:
        ActBertForPretraining.from_pretrained(saved)
    assert "\n" not in str(info.value)


def test_uses_regions_reads_the_training_record_beside_or_in_the_run_folder(tmp_path):
    """``train_config.json`` beside the weights (a shipped model), else in the run folder of
    ``RUN/last`` (as ``actbert train`` writes it); none: a model that uses regions."""
    import os

    from actbert.checkpoint import uses_regions

    run, shipped, plain = tmp_path / "run", tmp_path / "shipped", tmp_path / "plain"
    for folder in (run / "last", shipped, plain):
        folder.mkdir(parents=True)
    (run / "train_config.json").write_text(json.dumps({"use_regions": False}))
    (shipped / "train_config.json").write_text(json.dumps({"use_regions": False, "steps": 1}))
    assert uses_regions(run / "last") is False
    assert uses_regions(shipped) is False
    assert uses_regions(plain) is True
    (run / "last" / "train_config.json").write_text(json.dumps({"use_regions": True}))
    assert uses_regions(run / "last") is True  # beside the weights first
    record = shipped / "train_config.json"  # a rewritten record is read again
    record.write_text(json.dumps({"use_regions": True, "steps": 22}))
    os.utime(record, ns=(1, 2))
    assert uses_regions(shipped) is True
