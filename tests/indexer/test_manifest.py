"""library.json read as a ``LibraryManifest``: every file read gives back the same JSON (keys,
order, values, unknown keys, nulls), the bytes the library writes are unchanged by a read and a
rewrite, the model entry is read once into a ``ModelEntry``, and a real ingest's manifest and its
``IngestSummary`` and status keep the JSON the commands print."""

from __future__ import annotations

import json
from dataclasses import asdict, fields

import pytest
import torch

from actbert.config import ActBertConfig
from actbert.model import ActBertForPretraining
from indexer.cli import main
from indexer.errors import LibraryError
from indexer.features.i3d import FEATURE_SIZE as I3D_FEATURE_SIZE
from indexer.index.embed import set_library_model
from indexer.index.search import build_index
from indexer.index.service import LibraryService
from indexer.library.ingest import IngestSettings, IngestSummary
from indexer.library.manifest import LibraryManifest, ModelEntry, read_manifest
from indexer.library.store import Library, write_json_atomic
from synthkitchen.corpus import generate

MODEL = {"checkpoint": "models/pretrain/last", "fingerprint": "9f0c1d2e3a4b5c6d", "max_regions": 36}
MANIFESTS = {
    "new": {"format": 1, "created": 1767225600.25, "settings": {}, "model": None},
    "demo": {"created": 1767225600.0, "demo": {"corpus": {"videos": 4, "seconds": 1.5}, "ready": {}},
             "extractors": {"actions": {"name": "i3d", "preset": "fast", "version": "kinetics400"},
                            "regions": {"classes": ["__background__", "egg"], "name": "det", "version": "1"}},
             "format": 1, "index_backend": {"name": "faiss"}, "model": MODEL,
             "model_no_regions": {"checkpoint": "/abs/models/no_regions"},
             "settings": {"preset": "fast", "regions": True, "future_setting": [1, 2]},
             "sources": ["/videos", "/more videos"], "verbs": ["crack", "pour"]},
    # unknown keys, keys in a hand-edited order, nulls where an object may be, an entry's own extras
    "hand edited": {"zeta": {"nested": [1, None]}, "format": 1, "extractors": None, "sources": None,
                    "model": {**MODEL, "fingerprint": None, "trained_on": "sk440"}, "note": "after",
                    "index_backend": {"name": "milvus", "uri": "lib/milvus.db", "collection": "c"},
                    "created": "yesterday", "verbs": [], "demo": {}},
    "bare": {"format": 1},
}


@pytest.mark.parametrize("name", MANIFESTS)
def test_every_manifest_gives_back_its_json(name):
    data = MANIFESTS[name]
    manifest = LibraryManifest.from_json(json.loads(json.dumps(data)))
    assert manifest.to_json() == data and list(manifest.to_json()) == list(data)
    # values nested too (inside a model entry: checkpoint, fingerprint, max_regions, then the
    # others; library.json and the index manifest are written with sorted keys)
    assert json.dumps(manifest.to_json(), sort_keys=True) == json.dumps(data, sort_keys=True)
    assert LibraryManifest.from_json(manifest.to_json()) == manifest


@pytest.mark.parametrize("name", MANIFESTS)
def test_a_read_and_a_rewrite_leave_the_bytes(tmp_path, name):
    """What ``Library.update_manifest`` writes for a file it read and changed nothing in."""
    path = tmp_path / "library.json"
    write_json_atomic(path, MANIFESTS[name])
    before = path.read_bytes()
    write_json_atomic(path, read_manifest(path).to_json())
    assert path.read_bytes() == before


def test_the_model_entry_is_read_once_into_fields():
    manifest = LibraryManifest.from_json(MANIFESTS["demo"])
    assert manifest.model == ModelEntry("models/pretrain/last", "9f0c1d2e3a4b5c6d", 36)
    assert manifest.model_fingerprint == "9f0c1d2e3a4b5c6d"
    assert manifest.entry("model_no_regions").folder("/lib").as_posix() == "/abs/models/no_regions"
    assert manifest.model.folder("/lib").as_posix() == "/lib/models/pretrain/last"
    assert manifest.region_classes == ["__background__", "egg"]
    assert manifest.action_extractor["version"] == "kinetics400"
    edited = LibraryManifest.from_json(MANIFESTS["hand edited"])
    assert edited.model.fingerprint is None and edited.model.extra == {"fingerprint": None, "trained_on": "sk440"}
    assert edited.sources == () and edited.extractors == {} and edited.created is None
    assert edited.extra["note"] == "after" and edited.index_backend["name"] == "milvus"
    bare = LibraryManifest.from_json(MANIFESTS["bare"])
    assert bare.model is None and bare.model_fingerprint is None and bare.region_classes == []
    with pytest.raises(ValueError, match="role"):
        bare.entry("checkpoint")


def test_a_manifest_built_in_code_names_the_fields_it_sets():
    manifest = LibraryManifest(model=ModelEntry("m", "f"), sources=("/v",), extra={"note": 1})
    assert manifest.to_json() == {"format": 1, "model": {"checkpoint": "m", "fingerprint": "f"},
                                  "sources": ["/v"], "note": 1}


@pytest.mark.parametrize("data, reason", [
    ([], "the manifest is a JSON list, not an object"),
    ({"format": 1, "model": "models/actbert"}, '"model" is "models/actbert", not an object naming its "checkpoint"'),
    ({"format": 1, "model_no_regions": {"fingerprint": "f"}}, '"model_no_regions" is {"fingerprint": "f"}'),
    ({"format": 1, "verbs": ["a", 1]}, '"verbs" is ["a", 1], not a list of strings'),
    ({"format": 1, "demo": []}, '"demo" is [], not an object'),
    ({"format": "1"}, '"format" is \'1\' (str); it must be the number 1'),
    ({"format": 2}, "library format 2 is not 1"),
    ({"model": None}, "library format None is not 1"),
])
def test_one_place_refuses_a_misshapen_manifest_in_one_line(data, reason, tmp_path):
    with pytest.raises(LibraryError) as caught:
        LibraryManifest.from_json(data, tmp_path / "library.json")
    assert reason in str(caught.value) and "\n" not in str(caught.value)


def test_a_write_is_checked_before_it_reaches_the_file(tmp_path):
    library = Library.create(tmp_path / "lib")
    before = (library.root / "library.json").read_bytes()
    with pytest.raises(LibraryError, match='"model" is 5'):
        library.update_manifest(model=5)
    assert (library.root / "library.json").read_bytes() == before
    library.update_manifest(model=ModelEntry("models/x", "f", 3), note={"kept": True})
    reread = json.loads((library.root / "library.json").read_text())
    assert reread["model"] == {"checkpoint": "models/x", "fingerprint": "f", "max_regions": 3}
    assert reread["note"] == {"kept": True} and list(reread) == sorted(reread)


# ---- a real ingest ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """Two SynthKitchen videos ingested (random action weights, no regions) into a library with a
    tiny model and its index; the ``ingest --json`` output and the library."""
    root = tmp_path_factory.mktemp("ingested")
    generate(root / "corpus", 2, seed=5, size=(96, 64), fps=8, step_sec=(1.5, 2.0))
    lib = Library.create(root / "lib")
    config = ActBertConfig.from_name("tiny", action={"feature_size": I3D_FEATURE_SIZE}, region={"feature_size": 1})
    torch.manual_seed(0)
    ActBertForPretraining(config).eval().save_pretrained(lib.root / "models" / "actbert")
    set_library_model(lib, lib.root / "models" / "actbert")
    build_index(lib)
    summary = LibraryService(lib).ingest([root / "corpus" / "videos"],
                                         IngestSettings(action_weights="none", regions=False))
    yield lib, summary
    lib.close()


def test_the_manifest_of_a_real_ingest_round_trips(ingested):
    lib, _ = ingested
    path = lib.root / "library.json"
    text = path.read_text()
    manifest = read_manifest(path)
    assert manifest.to_json() == json.loads(text)
    assert json.dumps(manifest.to_json(), indent=2, sort_keys=True) == text  # the bytes it was written as
    assert isinstance(manifest.model.max_regions, int) and len(manifest.model.fingerprint) == 16
    assert set(manifest.extractors) == {"actions"} and len(manifest.sources) == 1
    assert IngestSettings.from_record(manifest.settings) == IngestSettings(action_weights="none", regions=False)
    lib.update_manifest()  # a write that changes nothing writes the same bytes
    assert path.read_text() == text


def test_the_ingest_summary_keeps_the_json_it_printed(ingested):
    _, summary = ingested
    assert isinstance(summary, IngestSummary)
    assert summary.to_json() == {"videos": 2, "todo": 2, "done": 2, "failed": 0, "errors": {}, "indexed": True,
                                 "not_searched": [], "interrupted": []}
    assert list(summary.to_json()) == [f.name for f in fields(IngestSummary)] and summary.already_done == 0


def test_status_json_is_the_status_record(ingested, capsys):
    lib, _ = ingested
    assert main(["status", str(lib.root), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    status = LibraryService(lib).status()
    assert printed == json.loads(json.dumps(status.to_json()))
    assert list(printed) == ["library", "counts", "model", "index", "region_index", "videos"]
    assert printed["model"] == lib.manifest.model.to_json() and printed["index"]["state"] == "ok"
    assert list(printed["videos"][0]) == list(asdict(status.videos[0]))
    assert {v["status"] for v in printed["videos"]} == {"done"} and all(v["clips"] for v in printed["videos"])
