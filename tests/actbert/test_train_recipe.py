"""Training recipes as files (``actbert train --config``): the Makefile's ``demo-model`` runs the
shipped recipes from configs/: each of its first four training runs gets exactly the ``TrainConfig``
that the 18 flags it passed before (the Makefile's DEMO_RECIPE / DEMO_CONTINUE variables, copied
below) gave, the last four those of runs F and G (lab/model_tries.md); flags override the file; a
bad file is a one-line error."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest

from actbert.cli import build_parser, main
from actbert.cli.train import train_config

ROOT = Path(__file__).resolve().parents[2]
LIB = "/data/lib"
# The Makefile's flags before the recipes became files (DEMO_RECIPE, DEMO_CONTINUE, DEMO_STEPS 2000,
# DEMO_CONTINUE_STEPS 1000; demo_stage gave the ablation --no-regions and its own --init).
STAGE1 = ("--steps 2000 --preset mini --clips-per-sample 2 --batch-size 16 --lr 1e-4 --warmup-steps 100 "
          "--schedule cosine --match-on clean --match-input fused --match-weight 10 --hard-negatives 0 "
          "--freeze-text-layers 4 --checkpoint-every 50 --keep-every 250 --seed 0")
STAGE2 = ("--init assets/demo/actbert --steps 1000 --clips-per-sample 2 --batch-size 16 --lr 5e-5 "
          "--warmup-steps 50 --schedule cosine --match-on clean --match-weight 10 --hard-negatives 0 "
          "--freeze-text-layers 4 --checkpoint-every 50 --keep-every 250 --seed 1")
OLD = {
    "runs/full": f"--library {LIB} --out /data/runs/full {STAGE1}",
    "runs/no_regions": f"--library {LIB} --out /data/runs/no_regions --no-regions {STAGE1}",
    "runs2/full": f"--library {LIB} --out /data/runs2/full {STAGE2}",
    "runs2/no_regions": f"--library {LIB} --out /data/runs2/no_regions --no-regions "
                        + STAGE2.replace("assets/demo/actbert", "assets/demo/actbert_no_regions"),
}


def _config(argv: str | list[str]):
    args = build_parser().parse_args(["train", *(shlex.split(argv) if isinstance(argv, str) else argv)])
    args.json = True  # no progress bar either way
    return train_config(args)


def _makefile_train_runs() -> dict[str, str]:
    """{RUN/variant: the ``actbert train`` arguments} of ``make -n demo-model``."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    text = subprocess.run(["make", "-n", "demo-model", "VENV=/venv", "DEMO_DATA=/data"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout
    commands = re.findall(r"-m actbert train (.+?) &", text.replace("\\\n", " "))
    return {re.search(r"--out /data/(\S+)", c).group(1): c for c in commands}


def test_the_makefile_trains_the_shipped_model_with_the_recipe_files():
    """Stages 1-2 as the flags they replaced; stages 3-5 are runs F, G and C0 of lab/model_tries.md
    (the full model from the shipped stage 2 and then from its own stages 3 and 4, the ablation the
    same from its own), G's matching score with the alignment weight 20; stage 5 on seed 0 alone."""
    runs = _makefile_train_runs()
    later = {name: runs.pop(name) for name in list(runs) if name.startswith(("runs3/", "runs4/", "runs5/"))}
    f_ablation = RUN_F.replace("assets/demo/actbert", "assets/demo/actbert_no_regions")
    g_flags = " --mined-negatives --match-alignment-weight 20 --action-video-weight 3"
    merged = "--corpus /data/merged/corpus.jsonl"  # seed 0 + seed 1's 1,500 videos as train
    c0_flags = " --steps 300 --keep-every 100"
    expected = {
        "runs3/full": f"{merged} --out /data/runs3/full {RUN_F}",
        "runs3/no_regions": f"{merged} --out /data/runs3/no_regions --no-regions {f_ablation}",
        "runs4/full": f"{merged} --out /data/runs4/full "
                      + RUN_F.replace("assets/demo/actbert", "/data/runs3/full/last") + g_flags,
        "runs4/no_regions": f"{merged} --out /data/runs4/no_regions --no-regions "
                            + RUN_F.replace("assets/demo/actbert", "/data/runs3/no_regions/last") + g_flags,
        # stage 5 (run C0): stage 4's recipe, 300 steps, on seed 0's own train split
        "runs5/full": "--corpus /data/lib/corpus.jsonl --out /data/runs5/full "
                      + RUN_F.replace("assets/demo/actbert", "/data/runs4/full/last") + g_flags + c0_flags,
        "runs5/no_regions": "--corpus /data/lib/corpus.jsonl --out /data/runs5/no_regions --no-regions "
                            + RUN_F.replace("assets/demo/actbert", "/data/runs4/no_regions/last")
                            + g_flags + c0_flags,
    }
    assert sorted(later) == sorted(expected)
    for name, argv in later.items():
        assert _config(argv) == _config(expected[name]), name
    assert _config(later["runs4/full"]).match_alignment_weight == 20.0
    assert sorted(runs) == sorted(OLD)
    for name, argv in runs.items():
        assert "--config configs/demo_stage" in argv, argv
        new, old = _config(argv), _config(OLD[name])
        assert new == old, name
        # the run's train_config.json reads the same too (10.0, not 10)
        assert json.dumps(asdict(new), sort_keys=True) == json.dumps(asdict(old), sort_keys=True)
    assert _config(runs["runs2/no_regions"]).init == "assets/demo/actbert_no_regions"
    assert _config(runs["runs/full"]).match_weight == 10.0 and not _config(runs["runs/no_regions"]).use_regions


def test_flags_override_the_recipe_and_fields_it_leaves_keep_their_defaults():
    config = _config(["--config", str(ROOT / "configs/demo_stage1.json"), "--corpus", "c.jsonl",
                      "--out", "o", "--steps", "5", "--lr", "0.5", "--preset", "tiny"])
    assert (config.steps, config.lr, config.preset) == (5, 0.5, "tiny")
    assert (config.match_input, config.keep_every, config.corpus) == ("fused", 250, "c.jsonl")
    assert config.log_every == 10 and config.video_negatives == 0.0  # not in the file: defaults
    plain = _config(["--corpus", "c.jsonl", "--out", "o"])
    assert (plain.preset, plain.lr, plain.steps) == ("mini", 1e-5, 1000)


def test_notes_are_ignored_and_a_stoplist_spec_is_read(tmp_path):
    stoplist = tmp_path / "stop.txt"
    stoplist.write_text("# not actions\nadd\nput  # comment\n")
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"_about": "how to launch", "ignore_verbs": str(stoplist),
                                  "max_seconds": 60, "dropout": 0}))
    config = _config(["--config", str(recipe), "--corpus", "c", "--out", "o"])
    assert config.ignore_verbs == ("add", "put")
    assert config.max_seconds == 60.0 and isinstance(config.max_seconds, float)
    assert config.dropout == 0.0 and isinstance(config.dropout, float)


@pytest.mark.parametrize("content, says", [
    ('{"lr": 1e-4, "learning_rate": 1}', "unknown recipe keys ['learning_rate']"),
    ('{"out": "elsewhere"}', "unknown recipe keys ['out']"),
    ("[1, 2]", "a recipe is a JSON object"),
    ("{lr: 1}", "not JSON"),
])
def test_a_bad_recipe_is_a_one_line_error(tmp_path, capsys, content, says):
    recipe = tmp_path / "bad.json"
    recipe.write_text(content)
    assert main(["train", "--config", str(recipe), "--corpus", str(tmp_path / "c"), "--out",
                 str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert says in err and str(recipe) in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


# Runs F and G of lab/model_tries.md as they were launched (flags), before they became recipe files.
RUN_F = ("--init assets/demo/actbert --steps 600 --clips-per-sample 1 --batch-size 32 --groups-per-video 4 "
         "--video-negatives 0.5 --hard-negatives 0 --match-input cls --lr 1e-4 --warmup-steps 50 "
         "--schedule cosine --match-on clean --match-weight 10 --freeze-text-layers 4 "
         "--action-video-weight 1 --ignore-verbs configs/verb_stoplist.txt --checkpoint-every 100 "
         "--keep-every 200 --seed 2")


def test_the_stage_3_and_4_recipes_are_runs_f_and_g(monkeypatch):
    monkeypatch.chdir(ROOT)
    base = f"--library {LIB} --out /data/out "
    assert _config(base + "--config configs/demo_stage3.json") == _config(base + RUN_F)
    stage4 = _config(base + "--config configs/demo_stage4.json --init /data/F/last")
    run_g = _config(base + RUN_F.replace("assets/demo/actbert", "/data/F/last") + " --mined-negatives"
                    + " --match-alignment-weight 20 --action-video-weight 3")
    assert stage4 == run_g and stage4.mined_negatives and "subscribe" in stage4.ignore_verbs
    assert stage4.match_alignment_weight == 20.0 and stage4.action_video_weight == 3.0
