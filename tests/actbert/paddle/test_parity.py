"""The released checkpoint's MSR-VTT protocol end to end: a generated LMDB in PaddleVideo's format,
the small Paddle fixture, and an independent re-implementation of PaddleVideo's input building
(``MSRVTTDataset.get_image_feature``/``gen_feature``) and metric (``MSRVTTMetric``)."""

import json
import pickle

import lmdb
import numpy as np
import pytest
import torch

from actbert import ActBertForPretraining
from actbert.cli import main
from actbert.data import box_locations
from actbert.paddle.parity import (
    FeatureStoreError,
    PaddleFeatureStore,
    decode_record,
    region_locations,
    text_inputs,
)
from actbert.tokenizer import ActBertTokenizer

FIXTURE_HEADS = {"text": 4, "action": 4, "region": 4, "tangled": 4}
HEADS_ARG = "text=4,action=4,region=4,tangled=4"
W, H = 320, 240
# (regions, actions) per video: one video has more than 35 regions, one exactly 35.
SIZES = [(3, 5), (40, 3), (10, 1), (1, 5), (35, 2), (7, 4)]
CAPTIONS = ["a man cuts the tomato", "a woman pours water into a pot", "the dog runs in the park",
            "a girl sings a song", "people play football on the field", "the chef stirs the soup"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fixture_path(fixtures):
    return fixtures / "paddle_actbert_small" / "actbert_small.pdparams"


@pytest.fixture(scope="module")
def model(fixture_path):
    return ActBertForPretraining.from_paddle(fixture_path, heads=FIXTURE_HEADS).eval()


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A vocabulary for the fixture's 1,000 ids, the captions CSV and the LMDB."""
    root = tmp_path_factory.mktemp("msrvtt")
    words = sorted({w for c in CAPTIONS for w in c.split()})
    vocab = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    vocab += [f"filler{i}" for i in range(1000 - len(vocab))]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    rows = ["key,vid_key,video_id,sentence"] + [
        f"ret{i},msr{9000 + i},video{9000 + i},{c}" for i, c in enumerate(CAPTIONS)]
    (root / "captions.csv").write_text("\n".join(rows) + "\n")
    rng = np.random.default_rng(0)
    records = {}
    env = lmdb.open(str(root / "msrvtt_test.lmdb"), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for i, (regions, actions) in enumerate(SIZES):
            x1y1 = rng.uniform(0, [W - 20, H - 20], (regions, 2))
            x2y2 = x1y1 + rng.uniform(5, 20, (regions, 2))
            item = {"video_id": f"video{9000 + i}",
                    "image_h": np.int64(H) if i % 2 else H, "image_w": np.int64(W) if i % 2 else W,
                    "features": rng.random((regions, 24), dtype=np.float32) * 3,
                    "boxes": np.concatenate([x1y1, x2y2], 1).astype(np.float32),
                    "action_features": rng.random((actions, 20), dtype=np.float32) * 3}
            records[item["video_id"]] = item
            txn.put(item["video_id"].encode(), pickle.dumps(item, protocol=2 if i % 2 else 5))
    env.close()
    return root, records


def paddle_video_inputs(item):
    """PaddleVideo's get_image_feature + gen_feature for one video (max 36 regions, 5 actions)."""
    features, boxes = item["features"], item["boxes"]
    g_feat = np.sum(features, axis=0) / features.shape[0]
    features = np.concatenate([g_feat[None], features], 0)
    loc = np.zeros((boxes.shape[0], 5), np.float32)
    loc[:, :4] = boxes
    width, height = float(item["image_w"]), float(item["image_h"])
    loc[:, 4] = (loc[:, 3] - loc[:, 1]) * (loc[:, 2] - loc[:, 0]) / (width * height)
    loc[:, [0, 2]] /= width
    loc[:, [1, 3]] /= height
    loc = np.concatenate([np.array([[0, 0, 1, 1, 1]]), loc], 0)
    n = min(features.shape[0], 36)
    out = {"region_features": np.zeros((36, 24)), "region_locations": np.zeros((36, 5)),
           "region_mask": np.zeros(36), "action_features": np.zeros((5, 20)), "action_mask": np.ones(5)}
    out["region_features"][:n], out["region_locations"][:n] = features[:n], loc[:n]
    out["region_mask"][:n] = 1
    out["action_features"][:len(item["action_features"])] = item["action_features"]
    return {k: torch.tensor(v, dtype=torch.long if k.endswith("mask") else torch.float32) for k, v in out.items()}


def reference_scores(model, tokenizer, records, captions):
    videos = [paddle_video_inputs(records[f"video{9000 + i}"]) for i in range(len(captions))]
    batch = {k: torch.stack([v[k] for v in videos]) for k in videos[0]}
    scores = []
    for caption in captions:
        enc = tokenizer(caption)
        ids = torch.zeros(1, 36, dtype=torch.long)
        mask = torch.zeros(1, 36, dtype=torch.long)
        ids[0, :enc.ids.shape[1]], mask[0, :enc.ids.shape[1]] = enc.ids[0], 1
        with torch.no_grad():
            out = model(text_ids=ids, text_mask=mask, token_type_ids=torch.zeros_like(ids), **batch)
        scores.append(out.match_score.numpy())
    return np.stack(scores)


def paddle_metrics(scores):
    """MSRVTTMetric: rank = position of the target in argsort(-score); target of query i = video i."""
    ranks = np.array([np.where(np.argsort(-scores[i]) == i)[0][0] for i in range(len(scores))], float)
    return {"r1": 100.0 * np.sum(ranks < 1) / len(ranks), "r5": 100.0 * np.sum(ranks < 5) / len(ranks),
            "r10": 100.0 * np.sum(ranks < 10) / len(ranks), "median_rank": np.floor(np.median(ranks) + 1),
            "mean_rank": np.mean(ranks) + 1}


def run_cli(argv, capsys):
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def cli_args(root, checkpoint, *extra):
    return ["evaluate-msrvtt", "--checkpoint", str(checkpoint), "--features", str(root / "msrvtt_test.lmdb"),
            "--captions", str(root / "captions.csv"), "--vocab", str(root / "vocab.txt"),
            "--batch-size", "4", "--no-progress", "--device", "cpu", "--json", *extra]


def test_end_to_end_matches_paddlevideo_protocol(bench, model, fixture_path, capsys, tmp_path):
    root, records = bench
    tokenizer = ActBertTokenizer(root / "vocab.txt", max_length=36)
    expected_scores = reference_scores(model, tokenizer, records, CAPTIONS)
    rc, out, err = run_cli(cli_args(root, fixture_path, "--heads", HEADS_ARG,
                                    "--scores-out", str(tmp_path / "s.npy")), capsys)
    assert rc == 0, err
    result = json.loads(out)
    scores = np.load(tmp_path / "s.npy")
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
    assert len(np.unique(scores.round(6))) > 30   # the model tells videos apart: ranks are meaningful
    for key, value in paddle_metrics(expected_scores).items():
        assert result[key] == pytest.approx(value), key
    assert result["num_queries"] == 6 and result["num_videos"] == 6


def test_converted_directory_and_limit(bench, model, capsys, tmp_path):
    root, records = bench
    model.save_pretrained(tmp_path / "converted")
    rc, out, err = run_cli(cli_args(root, tmp_path / "converted", "--limit", "3",
                                    "--scores-out", str(tmp_path / "s.npy")), capsys)
    assert rc == 0, err
    tokenizer = ActBertTokenizer(root / "vocab.txt", max_length=36)
    full = reference_scores(model, tokenizer, records, CAPTIONS)
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), full[:3, :3], rtol=1e-5, atol=1e-6)
    assert json.loads(out)["num_videos"] == 3


def test_inputs_follow_paddlevideo(bench):
    root, records = bench
    item = records["video9001"]   # 40 regions: global = mean of all 40, then the first 35 boxes
    with PaddleFeatureStore(root / "msrvtt_test.lmdb") as store:
        assert len(store) == 6
        record = store.get("video9001")
    assert record.features.shape == (40, 24) and record.image_w == W
    from actbert.paddle.parity import video_inputs

    ours = video_inputs(record)
    ref = paddle_video_inputs(item)
    for key, value in ours.items():
        np.testing.assert_allclose(value, ref[key].numpy(), rtol=1e-6, atol=1e-6, err_msg=key)
    assert ours["region_mask"].sum() == 36
    np.testing.assert_allclose(ours["region_features"][0], item["features"].mean(0), rtol=1e-6)


def test_locations_equal_box_locations_inside_the_frame():
    boxes = np.array([[0, 0, 320, 240], [10, 20, 110, 70]], np.float32)
    np.testing.assert_allclose(region_locations(boxes, 320, 240), box_locations(boxes, 320, 240), rtol=1e-6)


def test_text_is_padded_to_36(bench):
    root, _ = bench
    ids, mask = text_inputs(ActBertTokenizer(root / "vocab.txt", max_length=36), "a man cuts " * 30)
    assert ids.shape == (1, 36) and mask.sum() == 36 and ids[0, -1].item() == 5   # [SEP] after 34 pieces
    ids, mask = text_inputs(ActBertTokenizer(root / "vocab.txt", max_length=36), "a man")
    assert ids.shape == (1, 36) and mask.sum() == 4 and ids[0, 4:].eq(0).all()


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_restricted_unpickler_and_clear_errors(bench, tmp_path, capsys, fixture_path):
    with pytest.raises(FeatureStoreError, match="refusing to load builtins.print"):
        decode_record(pickle.dumps({"features": np.zeros((1, 2)), "x": _Evil()}), "v")
    assert "never run" not in capsys.readouterr().out
    with pytest.raises(FeatureStoreError, match="lacks"):
        decode_record(pickle.dumps({"features": np.zeros((1, 2))}), "v")
    root, _ = bench
    (tmp_path / "c.csv").write_text("key,vid_key,video_id,sentence\nret0,x,video42,a man\n")
    argv = cli_args(root, fixture_path, "--heads", HEADS_ARG)
    argv[argv.index("--captions") + 1] = str(tmp_path / "c.csv")
    rc, out, err = run_cli(argv, capsys)
    assert rc == 1 and "no record for video 'video42'" in err and "video9000" in err
    rc, out, err = run_cli(cli_args(root, tmp_path / "missing.pdparams"), capsys)
    assert rc == 1 and "no such checkpoint" in err
