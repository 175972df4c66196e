"""ALBEF's hard negatives for the matching head (``--mined-negatives``): each mismatched text is
judged against another video of the batch drawn by the alignment's similarity, never one whose
text is the same words."""

import torch

from actbert.pretraining.collator import Collator
from actbert.pretraining.objectives import VIDEO_KEYS, PretrainingObjective, mined_negatives
from actbert.pretraining.train import TrainConfig, train
from actbert.tokenizer import ActBertTokenizer
from tests.actbert.test_action_vocabulary import _tiny_model
from tests.actbert.corpus_helpers import make_corpus


def test_the_draw_follows_the_similarity_and_skips_identical_texts():
    # texts 0 and 1 are the same words; text 0 is closest to video 1, then video 2
    text = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0],
                                                       [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), dim=-1)
    video = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0, 0.0], [0.99, 0.1, 0.0],
                                                        [0.9, 0.0, 0.4], [0.0, 1.0, 0.0]]), dim=-1)
    ids = torch.tensor([[5, 6], [5, 6], [7, 8], [9, 9]])
    scale = torch.tensor(100.0).log()  # logit scale 100: the draw is nearly the arg max
    torch.manual_seed(0)
    draws = torch.stack([mined_negatives(text, video, scale, ids, torch.tensor([1, 1, 1, 0]))
                         for _ in range(200)])
    assert (draws[:, 0] == 2).float().mean() > 0.95  # video 1 has the same words: never drawn
    assert not (draws[:, 0] == 0).any() and not (draws[:, 1] <= 1).any()
    assert (draws[:, 2] == 3).float().mean() > 0.95  # text 2's closest other video
    assert (draws[:, 3] == 3).all()  # a matched row keeps its own video


def test_every_mismatched_row_is_judged_against_its_mined_video(tmp_path):
    corpus, data, model = _tiny_model(tmp_path)
    tok = ActBertTokenizer()
    batch = Collator(tok, seed=0)([data[i] for i in range(6)])
    objective = PretrainingObjective(model, use_alignment=True, cls_id=tok.cls_id, sep_id=tok.sep_id,
                                     mined_negatives=True).eval()
    labels = batch.match_labels.clone()
    torch.manual_seed(3)
    terms = objective(batch)
    # By hand: the same draw from the alignment's vectors, then the full forward of each pair.
    clean = batch.clean
    with torch.no_grad():
        text = model.encode_text(clean["text_ids"], clean["text_mask"], clean.get("token_type_ids"))
        video = model.encode_video(**{k: clean[k] for k in VIDEO_KEYS}, cls_id=tok.cls_id, sep_id=tok.sep_id)
        torch.manual_seed(3)
        source = mined_negatives(text, video, model.align.logit_scale, clean["text_ids"], labels)
        assert ((source != torch.arange(6)) == labels.bool()).all()
        logits = model(**{k: v for k, v in clean.items() if k not in VIDEO_KEYS},
                       **{k: clean[k][source] for k in VIDEO_KEYS}, heads=("match",)).match_logits
    want = torch.nn.functional.cross_entropy(logits, labels)
    torch.testing.assert_close(terms["match"], want, atol=1e-5, rtol=1e-5)


def test_training_with_mined_negatives_runs_and_learns(tmp_path):
    corpus = make_corpus(tmp_path / "c")
    config = TrainConfig(corpus=str(corpus), out=str(tmp_path / "run"), preset="tiny",
                         clips_per_sample=1, batch_size=8, steps=20, lr=3e-3, warmup_steps=2,
                         log_every=1, progress=False, mined_negatives=True, groups_per_video=4)
    history = train(config)["history"]
    assert len(history) == 20 and all(h["match"] > 0 for h in history)
