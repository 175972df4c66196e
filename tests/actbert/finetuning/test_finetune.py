"""``actbert finetune``: each protocol on a tiny model and a synthetic corpus, then ``evaluate
--finetuned`` scored against naive recomputations through the model's public forward."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from actbert import ActBertConfig, ActBertForPretraining
from actbert.cli import main
from actbert.corpus import read_corpus
from actbert.data import clip_batch
from actbert.evaluation.evaluate import EvalConfig, evaluate
from actbert.evaluation.probe import LinearProbe
from actbert.evaluation.tasks import load_split, questions, segmentation_frames, segmentation_labels
from actbert.finetuning.finetune import FinetuneConfig, finetune
from actbert.tokenizer import ActBertTokenizer
from tests.actbert.corpus_helpers import make_eval_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("finetune")
    corpus = make_eval_corpus(folder / "corpus", train_videos=6, val_videos=3, test_videos=3)
    torch.manual_seed(0)
    ActBertForPretraining(ActBertConfig.from_name("tiny")).save_pretrained(folder / "base")
    return folder, corpus


def _finetune(setup, task, **changes):
    folder, corpus = setup
    config = FinetuneConfig(task=task, checkpoint=str(folder / "base"), out=str(folder / task),
                            epochs=2, lr=1e-3, **changes)
    return finetune(config, read_corpus(corpus)), folder / task


def _evaluate(setup, task, out, split="test"):
    folder, corpus = setup
    return evaluate(EvalConfig(corpus=str(corpus), checkpoint=str(folder / "base"), split=split,
                               tasks=(task,), finetuned=(str(out),), baselines=("random",),
                               resamples=20, meteor=False)).to_json()


def _video(model, split, clip):
    c = split.clips[clip]
    batch, _ = clip_batch(split.features[c.video], [c.index], model.config.max_regions)
    return batch


@torch.no_grad()
def _features(model, split, clip):
    """(1, F): [ACT] hidden state ++ pooled region output of the clip's video-only full forward."""
    tok = ActBertTokenizer()
    ids = torch.tensor([[tok.cls_id, tok.sep_id]])
    o = model(text_ids=ids, text_mask=torch.ones_like(ids), **_video(model, split, clip))
    return torch.cat([o.hidden["action"][:, 0], o.pooled["region"]], -1)


def test_segmentation_starts_at_the_probe_and_is_reported_as_finetuned(setup):
    record, out = _finetune(setup, "segmentation", probe_grid=(1e-2,))
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "head.safetensors",
                                               "finetune.json"}
    assert record["protocol"] == "finetuned" and record["system"] == "actbert_finetuned"
    assert [h["epoch"] for h in record["history"]][:2] == [0, 1]
    assert record["best_val"] == max(h["val"] for h in record["history"])
    folder, corpus = setup
    corpus_ = read_corpus(corpus)
    # Epoch 0 is the frozen-feature probe: a LinearProbe fitted here on the base model's train
    # clips (one weighted row per clip and frame label) gives the same val frame accuracy.
    base = ActBertForPretraining.from_pretrained(folder / "base").eval()
    train, val = load_split(corpus_, "train"), load_split(corpus_, "val")
    labels = segmentation_labels(train.corpus, val.corpus)
    rows = {}
    for clips, y in segmentation_frames(train, labels):
        for clip, label in zip(clips.tolist(), y.tolist()):
            rows[(clip, label)] = rows.get((clip, label), 0) + 1
    x = np.stack([_features(base, train, c).numpy()[0] for c, _ in rows])
    probe = LinearProbe(x, np.array([y for _, y in rows]), len(labels), 1e-2,
                        weights=np.array(list(rows.values())))
    hits = [probe.predict(_features(base, val, clip).numpy())[0] == label
            for clips, y in segmentation_frames(val, labels) for clip, label in zip(clips, y)]
    assert record["history"][0]["val"] == pytest.approx(100 * np.mean(hits), abs=1e-6)
    result = _evaluate(setup, "segmentation", out)
    assert result["protocols"]["segmentation"] == {
        "actbert": {"frame_accuracy": "probe"}, "actbert_no_regions": {"frame_accuracy": "probe"},
        "actbert_finetuned": {"frame_accuracy": "finetuned"}, "raw_features": {"frame_accuracy": "probe"},
        "random": {"frame_accuracy": "chance"}, "majority": {"frame_accuracy": "chance"}}
    # Naive: the saved model's full forward, its head, every 1-FPS test frame.
    model = ActBertForPretraining.from_pretrained(out).eval()
    head = load_file(str(out / "head.safetensors"))
    split = load_split(corpus_, "test")
    labels = segmentation_labels(split.corpus, corpus_.split("train"))
    correct = total = 0
    for clips, y in segmentation_frames(split, labels):
        for clip, label in zip(clips, y):
            logits = _features(model, split, clip) @ head["weight"].T + head["bias"]
            correct += int(labels.index(record["labels"][int(logits.argmax())]) == label)
            total += 1
    assert result["segmentation"]["actbert_finetuned"]["frame_accuracy"] == pytest.approx(
        100 * correct / total, abs=1e-3)


def test_videoqa_picks_the_highest_finetuned_matching_score(setup):
    record, out = _finetune(setup, "videoqa")
    assert not (out / "head.safetensors").exists()  # the matching head is the classifier
    result = _evaluate(setup, "videoqa", out)
    assert result["protocols"]["videoqa"]["actbert_finetuned"] == {"accuracy": "finetuned"}
    assert result["protocols"]["videoqa"]["actbert"]["accuracy_linear"] == "probe"
    model = ActBertForPretraining.from_pretrained(out).eval()
    split = load_split(read_corpus(setup[1]), "test")
    tok = ActBertTokenizer(max_length=64)
    hits = []
    for q in questions(split, seed=0):
        enc = tok(list(q.candidates))
        video = {k: v.expand(len(q.candidates), *v.shape[1:]) for k, v in _video(model, split, q.clip).items()}
        with torch.no_grad():
            logits = model(text_ids=enc.ids, text_mask=enc.mask, **video).match_logits
        hits.append(int((logits[:, 0] - logits[:, 1]).argmax()) == q.answer)
    assert result["videoqa"]["actbert_finetuned"]["accuracy"] == pytest.approx(100 * np.mean(hits), abs=1e-3)


def test_retrieval_ranks_by_the_finetuned_embeddings_and_refuses_seen_videos(setup):
    record, out = _finetune(setup, "retrieval")
    result = _evaluate(setup, "retrieval", out)
    assert set(result["protocols"]["retrieval"]["actbert_finetuned"].values()) == {"finetuned"}
    model = ActBertForPretraining.from_pretrained(out).eval()
    split = load_split(read_corpus(setup[1]), "test")
    tok = ActBertTokenizer(max_length=64)
    queries = [q for q in split.queries if q.target is not None]
    enc = tok([q.description for q in queries])
    with torch.no_grad():
        text = model.encode_text(enc.ids, enc.mask)
        video = torch.cat([model.encode_video(**_video(model, split, c)) for c in range(len(split.clips))])
    scores = (text @ video.T).numpy()
    ranks = np.array([(scores[i] > scores[i, q.target]).sum() for i, q in enumerate(queries)])
    figures = result["retrieval"]["actbert_finetuned"]
    assert figures["r1"] == pytest.approx(100 * np.mean(ranks < 1), abs=1e-3)
    assert figures["r5"] == pytest.approx(100 * np.mean(ranks < 5), abs=1e-3)
    with pytest.raises(ValueError, match="fine-tuned on videos of the evaluated split"):
        _evaluate(setup, "retrieval", out, split="val")


def test_finetune_command_writes_its_record(setup, capsys):
    folder, corpus = setup
    code = main(["finetune", "--corpus", str(corpus), "--checkpoint", str(folder / "base"),
                 "--task", "retrieval", "--out", str(folder / "cli"), "--epochs", "1", "--json"])
    assert code == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["protocol"] == "finetuned" and len(shown["val_by_epoch"]) == 2
    assert json.loads((folder / "cli" / "finetune.json").read_text())["task"] == "retrieval"
    assert main(["finetune", "--corpus", str(corpus), "--checkpoint", str(folder / "base"),
                 "--task", "retrieval", "--out", str(folder / "x"), "--no-regions"]) == 1
