"""The one atomic-write helper: a reader sees the old file or the new one, and a failed write
leaves the old file and no temporary file behind."""

import pytest

from actbert.atomic import atomic_path, write_json, write_text


def test_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "a.json"
    write_json(target, {"v": 1})
    assert target.read_text() == '{"v": 1}'
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "half')
            assert target.read_text() == '{"v": 1}'  # not visible before the rename
            raise RuntimeError("killed mid-write")
    assert target.read_text() == '{"v": 1}'
    write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]
    with atomic_path(tmp_path / "c.png", suffix=".png") as tmp:
        assert tmp.name.startswith(".c.png.tmp-") and tmp.suffix == ".png"
        tmp.write_bytes(b"x")
    assert (tmp_path / "c.png").read_bytes() == b"x"
