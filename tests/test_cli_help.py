"""Every ``indexer`` and ``actbert`` command's ``--help`` ends with an example that names the command."""

from __future__ import annotations

import re

import pytest

import actbert.cli as actbert_cli
import indexer.cli as indexer_cli


def _help(main, argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("tool, main", [("indexer", indexer_cli.main), ("actbert", actbert_cli.main)])
def test_every_command_help_shows_an_example(tool, main, capsys):
    top = _help(main, ["--help"], capsys)
    commands = re.search(r"\{([a-z0-9,-]+)\}", top).group(1).split(",")
    assert len(commands) >= 6
    for command in commands:
        text = _help(main, [command, "--help"], capsys)
        example = text.split("example:", 1)
        assert len(example) == 2, f"{tool} {command} --help has no example"
        assert example[1].strip().startswith(f"{tool} {command}"), example[1]
