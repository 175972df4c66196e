"""A library.json of the wrong shape is a one-line reason from every command, not a traceback
(issue 29: a manifest that is a list, a model named by a bare string or an int)."""

from __future__ import annotations

import json

import pytest

from indexer.cli import main
from indexer.library.store import Library


@pytest.mark.parametrize("manifest, reason", [
    ([], "the manifest is a JSON list, not an object"),
    (5, "the manifest is a JSON int, not an object"),
    ({"model": "models/actbert"}, '"model" is "models/actbert", not an object naming its "checkpoint"'),
    ({"model": 5}, '"model" is 5, not an object naming its "checkpoint"'),
    ({"model": {"checkpoint": 7}}, '"model" is {"checkpoint": 7}, not an object'),
    ({"sources": "videos"}, '"sources" is "videos", not a list of strings'),
    ({"settings": [1]}, '"settings" is [1], not an object'),
])
@pytest.mark.parametrize("command", [["status"], ["search", "{root}", "egg"], ["repair"]],
                         ids=["status", "search", "repair"])
def test_every_command_gives_one_line_for_a_misshapen_manifest(tmp_path, capsys, manifest, reason, command):
    root = tmp_path / "lib"
    Library.create(root).close()
    if isinstance(manifest, dict):
        manifest = {**json.loads((root / "library.json").read_text()), **manifest}
    (root / "library.json").write_text(json.dumps(manifest))
    argv = [command[0], str(root), *command[2:]] if len(command) > 1 else [command[0], str(root)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "library.json" in err and reason in err, err
