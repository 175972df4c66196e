"""Recorded commands without a machine's folders (actbert.portable), against hand-written expectations."""

from __future__ import annotations

from actbert.portable import library_of, portable_command, portable_path


def test_paths_inside_the_library_become_relative_and_others_placeholders(tmp_path):
    lib = tmp_path / "lib"
    (lib / "models" / "run").mkdir(parents=True)
    (lib / "library.json").write_text("{}")
    command = (f"python -m actbert evaluate --corpus /work/data/sk440/lib/corpus.jsonl "
               f"--checkpoint {lib}/models/run --report={tmp_path}/report --split test "
               f"--plot relative/plots --library {lib} '/a path/with spaces'")
    shown = portable_command(command, lib)
    assert shown == ("python -m actbert evaluate --corpus <corpus> --checkpoint <library>/models/run "
                     "--report=<report> --split test --plot relative/plots --library <library> <path>")
    assert portable_command(shown, lib) == shown  # twice: no change
    assert str(tmp_path) not in portable_command(command)  # no library known: placeholders only
    assert portable_path("~/videos/a.mp4", lib, "video") == "<video>"
    assert portable_path("runs/x", lib) == "runs/x"
    assert library_of(lib / "models" / "run") == lib.resolve() and library_of(tmp_path) is None
