"""Inputs that used to end in a traceback give a one-line reason (issue 29 item 9): an unreachable
Milvus, a pickle refused as action weights, action weights of other sizes, a device this machine
lacks."""

from __future__ import annotations

import pickle
import socket

import pytest
import torch

from actbert.device import checked_device
from indexer.cli import main
from indexer.features.actions import ActionExtractor
from indexer.errors import ExplorerError
from indexer.library.store import Library


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_an_unreachable_milvus_is_one_line(tmp_path, capsys):
    from indexer.index.milvus_backend import MilvusUnavailable, connect

    with socket.socket() as s:  # a local port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MilvusUnavailable, match=f"cannot reach Milvus at http://127.0.0.1:{port}") as info:
        connect(f"http://127.0.0.1:{port}")
    assert "\n" not in str(info.value) and isinstance(info.value, ExplorerError)


class Gadget:
    def __reduce__(self):
        return (print, ("code ran",))


@pytest.mark.parametrize("content, reason", [
    ({"weight": Gadget()}, "was refused by torch's weights-only loader"),
    (b"not a pickle at all", "was refused by torch's weights-only loader"),
    ({"conv.weight": torch.zeros(3)}, "does not hold r3d_18 weights"),
], ids=["code-running pickle", "garbage", "other sizes"])
def test_bad_action_weights_are_one_line(tmp_path, capsys, content, reason):
    path = tmp_path / "weights.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif any(isinstance(v, torch.Tensor) for v in content.values()):
        torch.save(content, path)
    else:
        with path.open("wb") as f:
            pickle.dump(content, f)
    with pytest.raises(ExplorerError, match=reason) as info:
        ActionExtractor("r3d_18", weights=path)
    assert "\n" not in str(info.value)
    assert "code ran" not in capsys.readouterr().out


def test_a_device_this_machine_lacks_is_one_line(tmp_path, capsys):
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU (cuda:0 without any)
    with pytest.raises(ValueError, match=f"--device {missing}: "):
        checked_device(missing)
    assert checked_device("cpu") == "cpu" and checked_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        checked_device("tpu9")
    videos = tmp_path / "videos"
    videos.mkdir()
    Library.create(tmp_path / "lib").close()
    assert main(["ingest", str(videos), "--library", str(tmp_path / "lib"), "--device", missing,
                 "--no-regions"]) == 1
    assert f"--device {missing}" in _one_line(capsys)
