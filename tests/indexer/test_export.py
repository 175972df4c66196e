"""The exported corpus carries each step's narrated flag from SynthKitchen's ground truth."""

import json
import shutil

from actbert.corpus import read_corpus
from indexer.library.export import MIN_VERB_COUNT, export_corpus
from indexer.library.store import Library
from synthkitchen.ground_truth import narrated_steps, register
from tests.app.tiny_library import build_tiny_library

register()  # ingest and the corpus export read SynthKitchen's ground truth


def _step(verb, objects, start, end):
    return {"verb": verb, "objects": objects, "start_sec": start, "end_sec": end}


def _line(start, end, about, aligned):
    return {"start_sec": start, "end_sec": end, "step_index": about, "aligned": aligned}


def test_narrated_steps_by_hand():
    truth = {"steps": [_step("cut", ["tomato"], 0, 5), _step("pour", ["milk", "cup"], 5, 9),
                       _step("cut", ["tomato"], 9, 12), _step("stir", ["cup"], 12, 15)],
             "narration": [
                 _line(2, 3, 0, True),        # step 0, said while it is on screen
                 _line(6, 7, 3, False),       # about step 3, said during step 1: unaligned
                 _line(10, 11, 0, True),      # about step 0 but said during step 2, the same action
                 _line(12.5, 13, None, False),  # chatter during step 3
             ]}
    assert narrated_steps(truth) == [True, False, True, False]
    assert narrated_steps({"steps": truth["steps"]}) == [False] * 4


def test_export_flags_every_step_of_a_synthkitchen_library(tmp_path):
    library = Library(build_tiny_library(tmp_path / "lib"))
    corpus = read_corpus(export_corpus(library))
    # the header records the vocabulary's threshold: training recounts it on its own split
    assert corpus.meta["min_verb_count"] == MIN_VERB_COUNT
    steps = 0
    for video in corpus.videos:
        truth = json.loads((tmp_path / "lib/corpus/ground_truth" / f"{video.video_id}.json").read_text())
        assert len(video.steps) == len(truth["steps"]) > 0
        for i, (step, gt) in enumerate(zip(video.steps, truth["steps"])):
            assert step["description"] == gt["description"]
            # Independent check: an aligned line about this very step, said inside it.
            said = [n for n in truth["narration"] if n["aligned"] and n["step_index"] == i
                    and gt["start_sec"] <= (n["start_sec"] + n["end_sec"]) / 2 < gt["end_sec"]]
            assert isinstance(step["narrated"], bool) and (step["narrated"] or not said)
            steps += 1
    flags = [s["narrated"] for v in corpus.videos for s in v.steps]
    assert steps == len(flags) and len(set(flags)) == 2  # both kinds occur in the draw
    # Without its ground truth a step carries no flag (unknown), it is not "unnarrated".
    shutil.rmtree(tmp_path / "lib/corpus/ground_truth")
    corpus = read_corpus(export_corpus(library))
    assert all("narrated" not in s for v in corpus.videos for s in v.steps)
    library.close()


def test_export_corpus_command_writes_what_export_corpus_writes(tmp_path, capsys):
    from indexer.__main__ import main

    library = Library(build_tiny_library(tmp_path / "lib"))
    expected = export_corpus(library).read_text()
    (tmp_path / "lib" / "corpus.jsonl").unlink()
    assert main(["export-corpus", str(tmp_path / "lib")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "lib" / "corpus.jsonl")
    assert (tmp_path / "lib" / "corpus.jsonl").read_text() == expected
    assert main(["export-corpus", str(tmp_path / "missing")]) == 1
    library.close()
