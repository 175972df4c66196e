"""``actbert evaluate --dataset youcook2|msrvtt|crosstask|coin``: small files in each benchmark's
published format (YouCook2 and MSR-VTT: slices of the real annotation files in tests/fixtures),
generated features, a tiny model, the whole command; the paper's figures printed beside ours."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from actbert import ActBertConfig, ActBertForPretraining
from actbert.benchmarks.corpus import benchmark_corpus
from actbert.cli import main
from actbert.data import VideoFeatures

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_features(folder: Path, video_id: str, spans, seed: int) -> None:
    """A feature file whose clips are ``spans`` (seconds), 2 regions per clip, tiny widths."""
    rng = np.random.default_rng(seed)
    n = len(spans)
    VideoFeatures(
        video_id=video_id, clip_start_sec=np.array([s for s, _ in spans], float),
        clip_end_sec=np.array([e for _, e in spans], float),
        action_features=rng.random((n, 20), dtype=np.float32),
        action_scores=np.full((n, 5), 0.2, np.float32),
        region_features=rng.random((2 * n, 24), dtype=np.float32),
        region_boxes_xyxy=np.tile([[4.0, 4.0, 40.0, 30.0]], (2 * n, 1)),
        region_classes=rng.dirichlet(np.ones(11), 2 * n).astype(np.float32),
        region_scores=np.ones(2 * n, np.float32), region_clip=np.repeat(np.arange(n), 2),
        region_time_sec=np.repeat([0.5 * (s + e) for s, e in spans], 2), frame_size=(64, 48),
    ).save(folder / f"{video_id}.safetensors")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny"
    ActBertForPretraining(ActBertConfig.from_name("tiny")).save_pretrained(path)
    return str(path)


def _run(capsys, *argv):
    assert main(["evaluate", *argv, "--resamples", "20", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    return json.loads(out) if "--json" in argv else out


def test_youcook2_retrieval_and_captioning_in_the_papers_shape(tmp_path, checkpoint, capsys):
    database = json.loads((FIXTURES / "youcook2/yc2_annotations_trainval.json").read_text())["database"]
    train = [k for k, v in database.items() if v["subset"] == "training"][:4]
    val = [k for k, v in database.items() if v["subset"] == "validation"][:3]
    (tmp_path / "ann.json").write_text(json.dumps({"database": {k: database[k] for k in train + val}}))
    features = tmp_path / "features"
    for i, video in enumerate(train + val[:2]):  # the last validation video has no features
        write_features(features, video, [a["segment"] for a in database[video]["annotations"]], i)
    args = ["--dataset", "youcook2", "--annotations", str(tmp_path / "ann.json"), "--features",
            str(features), "--checkpoint", checkpoint, "--caption-epochs", "1", "--caption-min-steps", "10",
            "--no-meteor"]
    result = _run(capsys, *args, "--json")
    segments = sum(len(database[v]["annotations"]) for v in val[:2])
    assert result["info"]["dataset"] == "youcook2" and result["info"]["steps"] == segments
    assert result["info"]["train_video_ids"] == sorted(train)[1:]  # every 10th (the first) is val
    assert set(result) >= {"retrieval", "captioning", "paper", "protocols"}
    assert "step_localization" not in result and "bm25" not in result["retrieval"]
    assert result["paper"]["retrieval"]["actbert"] == {"r1": 9.6, "r5": 26.7, "r10": 38.0, "median_rank": 19}
    assert set(result["captioning"]) == {"actbert", "actbert_no_regions", "actbert_with_regions", "random"}
    assert result["protocols"]["retrieval"]["actbert"]["r1"] == "zero_shot"
    assert any("1 youcook2 videos" in n for n in result["notes"])
    # Every validation segment is a query whose only overlapping clip is its own segment.
    assert result["info"]["clips"] == segments
    table = _run(capsys, *args, "--tasks", "retrieval")
    assert "paper: actbert" in table and "R@1" in table and "MdR" in table
    paper_line = next(line for line in table.splitlines() if "paper: actbert" in line)
    assert paper_line.split()[-4:] == ["9.60", "26.70", "38.00", "19"]


def test_msrvtt_retrieval_and_multiple_choice(tmp_path, checkpoint, capsys):
    lines = (FIXTURES / "msrvtt/MSRVTT_JSFUSION_test.csv").read_text().splitlines()[:9]
    (tmp_path / "test.csv").write_text("\n".join(lines) + "\n")
    videos = [line.split(",")[2] for line in lines[1:]]
    for i, video in enumerate(videos):
        write_features(tmp_path / "features", video, [(0.0, 5.0), (5.0, 10.0)], i)
    result = _run(capsys, "--dataset", "msrvtt", "--annotations", str(tmp_path / "test.csv"),
                  "--features", str(tmp_path / "features"), "--checkpoint", checkpoint, "--json")
    assert result["info"]["videos"] == 8 and result["info"]["steps"] == 8
    assert set(result["retrieval"]) >= {"actbert", "actbert_no_regions", "random"}
    assert result["paper"]["videoqa"]["actbert"]["accuracy"] == 48.6
    assert result["protocols"]["videoqa"]["actbert"]["accuracy"] == "zero_shot"
    # The random row: each caption's candidates are 5 of the 8 captions; chance = 20%.
    assert 0 <= result["videoqa"]["random"]["accuracy"] <= 100


def test_crosstask_step_localization(tmp_path, checkpoint, capsys):
    release = tmp_path / "crosstask_release"
    (release / "annotations").mkdir(parents=True)
    (release / "tasks_primary.txt").write_text(
        "16815\nMake Jello Shots\nhttps://www.wikihow.com/Make-Jello-Shots\n3\n"
        "pour water,stir mixture,pour alcohol\n\n"
        "23521\nMake Kimchi Fried Rice\nhttps://www.wikihow.com/Make-Kimchi-Fried-Rice\n2\n"
        "add rice,stir mixture\n\n")
    rng = random.Random(0)
    truth = {}
    for task, steps in (("16815", 3), ("23521", 2)):
        for v in range(2):
            video = f"vid{task}{v}"
            rows = [(k + 1, 10.0 * k + 2, 10.0 * k + 8) for k in range(steps)]
            (release / "annotations" / f"{task}_{video}.csv").write_text(
                "".join(f"{k},{s},{e}\n" for k, s, e in rows))
            write_features(tmp_path / "features", video, [(5.0 * c, 5.0 * c + 5) for c in range(6)],
                           rng.randrange(1000))
            truth[video] = steps
    corpus = benchmark_corpus("crosstask", release, tmp_path / "features")
    assert [s["description"] for s in corpus.videos[0].steps] == ["pour water", "stir mixture", "pour alcohol"]
    result = _run(capsys, "--dataset", "crosstask", "--annotations", str(release), "--features",
                  str(tmp_path / "features"), "--checkpoint", checkpoint, "--json")
    assert set(result) >= {"step_localization", "paper"} and "retrieval" not in result
    assert result["info"]["steps"] == sum(truth.values())
    assert result["paper"]["step_localization"]["actbert_no_regions"]["recall"] == 37.1
    assert result["protocols"]["step_localization"]["actbert"]["recall"] == "zero_shot"
    # Kept beside the model under the benchmark's own name, not as the library's test evaluation.
    assert (Path(checkpoint) / "evaluation_crosstask_test.json").is_file()


def test_coin_segmentation_with_a_probe(tmp_path, checkpoint, capsys):
    database = {}
    for i in range(6):
        subset = "testing" if i >= 4 else "training"
        database[f"coin{i}"] = {
            "class": "MakeTea", "recipe_type": 3, "subset": subset, "duration": 20.0,
            "video_url": "", "annotation": [
                {"segment": [1.0, 7.0], "id": 11, "label": "boil water"},
                {"segment": [9.0, 15.0], "id": 12, "label": "pour tea"}]}
        write_features(tmp_path / "features", f"coin{i}", [(4.0 * c, 4.0 * c + 4) for c in range(5)], i)
    (tmp_path / "COIN.json").write_text(json.dumps({"database": database}))
    corpus = benchmark_corpus("coin", tmp_path / "COIN.json", tmp_path / "features")
    assert [v.split for v in corpus.videos] == ["val", "train", "train", "train", "test", "test"]
    result = _run(capsys, "--dataset", "coin", "--annotations", str(tmp_path / "COIN.json"),
                  "--features", str(tmp_path / "features"), "--checkpoint", checkpoint, "--json")
    assert set(result["segmentation"]) == {"actbert", "actbert_no_regions", "random", "majority",
                                           "raw_features"}
    assert result["protocols"]["segmentation"]["random"]["frame_accuracy"] == "chance"
    assert result["protocols"]["segmentation"]["actbert"]["frame_accuracy"] == "probe"
    assert result["paper"]["segmentation"]["actbert"]["frame_accuracy"] == 56.95
    with pytest.raises(FileNotFoundError, match="no such features folder"):
        benchmark_corpus("coin", tmp_path / "COIN.json", tmp_path / "nowhere")
