"""indexer.features.sampling against hand-computed spans, windows, groups and frame times."""

import numpy as np
import pytest

from indexer.features.sampling import (
    ClipSpan,
    fixed_windows,
    group_clips,
    narration_spans,
    sample_times,
    spread_times,
)
from indexer.features.transcripts import Cue


def triples(spans):
    return [(round(s.start_sec, 6), round(s.end_sec, 6), s.text) for s in spans]


def test_zero_cues_and_empty_video():
    assert narration_spans([], 60.0) == []
    assert narration_spans([Cue(0, 5, "hi")], 0.0) == []


def test_short_adjacent_cues_merge_until_min_length():
    cues = [Cue(0, 1.5, "first take"), Cue(1.5, 3, "the knife"), Cue(3, 5, "and cut"),
            Cue(5, 9.5, "now slice the\nbread"), Cue(9.5, 14, "pour the milk")]
    spans = narration_spans(cues, 60.0, min_sec=4.0, max_sec=10.0)
    # 0-1.5 (1.5 s) takes 1.5-3 (3 s) and 3-5 (5 s, >= 4: closed); 5-9.5 and 9.5-14 are long enough
    assert triples(spans) == [(0, 5, "first take the knife and cut"), (5, 9.5, "now slice the bread"),
                              (9.5, 14, "pour the milk")]
    assert [s.index for s in spans] == [0, 1, 2]


def test_merging_never_exceeds_max_and_isolated_short_cues_are_widened():
    # 2 s cue, then a cue 10 s later: merging would give 14 s > max, so the first one is widened
    cues = [Cue(20, 22, "stir"), Cue(32, 34, "serve it"), Cue(34, 35, "enjoy")]
    spans = narration_spans(cues, 60.0, min_sec=4.0, max_sec=10.0)
    assert triples(spans) == [(19, 23, "stir"), (31.5, 35.5, "serve it enjoy")]
    assert triples(narration_spans([Cue(0.5, 1.0, "hi")], 60.0)) == [(0, 4, "hi")]  # shifted inside the video
    assert triples(narration_spans([Cue(58.5, 59.5, "bye")], 60.0)) == [(56, 60, "bye")]


def test_short_last_cue_joins_the_previous_span():
    cues = [Cue(0, 5, "cut the onions finely"), Cue(5, 6, "done")]
    assert triples(narration_spans(cues, 30.0)) == [(0, 6, "cut the onions finely done")]


def test_a_cue_longer_than_max_is_split_with_its_words():
    words = "one two three four five six seven eight nine ten eleven twelve"
    spans = narration_spans([Cue(10, 35, words)], 100.0, min_sec=4.0, max_sec=10.0)
    # 25 s -> ceil(25 / 10) = 3 parts of 25/3 s; 12 words -> 4 each
    third = 25 / 3
    assert triples(spans) == [
        (10, round(10 + third, 6), "one two three four"),
        (round(10 + third, 6), round(10 + 2 * third, 6), "five six seven eight"),
        (round(10 + 2 * third, 6), 35, "nine ten eleven twelve"),
    ]
    # fewer words than parts: some parts have no text, all parts are kept
    assert [s.text for s in narration_spans([Cue(0, 30, "go")], 100.0)] == ["", "go", ""]


def test_video_shorter_than_min_gives_the_whole_video():
    assert triples(narration_spans([Cue(0.5, 1.5, "tiny")], 2.5)) == [(0, 2.5, "tiny")]


def test_cues_past_the_video_end_are_clipped_or_dropped():
    cues = [Cue(-2, 3, "before the start"), Cue(16, 25, "runs past the end"), Cue(30, 32, "after the end")]
    spans = narration_spans(cues, 20.0)
    assert triples(spans) == [(0, 4, "before the start"), (16, 20, "runs past the end")]
    for span in spans:
        assert 0 <= span.start_sec < span.end_sec <= 20.0


def test_every_span_is_within_bounds_on_irregular_cues():
    rng = np.random.default_rng(0)
    starts = np.sort(rng.uniform(0, 290, 80))
    lengths = rng.uniform(0, 25, 80)
    cues = [Cue(float(s), float(s + d), f"w{i}") for i, (s, d) in enumerate(zip(starts, lengths))]
    spans = narration_spans(cues, 300.0, min_sec=4.0, max_sec=10.0)
    durations = np.array([s.duration_sec for s in spans])
    assert np.all(durations >= 4.0 - 1e-9) and np.all(durations <= 10.0 + 1e-9)
    assert all(0 <= s.start_sec and s.end_sec <= 300.0 for s in spans)
    assert [s.index for s in spans] == list(range(len(spans)))
    # no word is lost or duplicated
    assert sorted(" ".join(s.text for s in spans).split()) == sorted(f"w{i}" for i in range(80))


def test_bad_bounds():
    with pytest.raises(ValueError):
        narration_spans([], 10.0, min_sec=5.0, max_sec=4.0)


def test_fixed_windows():
    def bounds(spans):
        return [(s.start_sec, s.end_sec) for s in spans]

    assert bounds(fixed_windows(20.0, window_sec=8.0)) == [(0, 8), (8, 16), (12, 20)]
    assert bounds(fixed_windows(16.0, window_sec=8.0)) == [(0, 8), (8, 16)]
    assert bounds(fixed_windows(12.0, 8.0, stride_sec=2.0)) == [(0, 8), (2, 10), (4, 12)]
    assert [(s.start_sec, s.end_sec, s.text, s.index) for s in fixed_windows(3.0)] == [(0, 3.0, "", 0)]
    assert fixed_windows(0.0) == []
    assert [s.index for s in fixed_windows(100.0)] == list(range(13))


def test_group_clips():
    clips = [ClipSpan(i, i + 1, str(i), i) for i in range(23)]
    groups = group_clips(clips, k=10)
    # 23 clips: the last group is moved back to end at clip 22, overlapping the second
    expected = [list(range(0, 10)), list(range(10, 20)), list(range(13, 23))]
    assert [[c.index for c in g] for g in groups] == expected
    overlapping = group_clips(clips[:14], k=10, stride=2)
    assert [g[0].index for g in overlapping] == [0, 2, 4]
    assert group_clips(clips[:3], k=10) == [tuple(clips[:3])]
    assert group_clips([], k=10) == []


def test_sample_times_at_one_fps_for_the_detector():
    np.testing.assert_allclose(sample_times(10.0, 13.0, fps=1.0), [10.5, 11.5, 12.5])
    np.testing.assert_allclose(sample_times(10.0, 13.5, fps=1.0), [10.75, 11.75, 12.75])  # centred
    np.testing.assert_allclose(sample_times(4.0, 4.4, fps=1.0), [4.2])  # shorter than a slot: its centre
    np.testing.assert_allclose(sample_times(7.0, 7.0, fps=1.0), [7.0])


def test_sample_times_for_the_action_cnn():
    times = sample_times(10.0, 20.0, fps=8.0, num_frames=32)
    expected = 15.0 + (np.arange(32) - 15.5) / 8.0  # 32 frames 1/8 s apart centred on 15 s
    np.testing.assert_allclose(times, expected)
    assert times[0] == pytest.approx(13.0625) and times[-1] == pytest.approx(16.9375)
    # a 2 s clip is shorter than the 4 s window: the edges clamp (repeat), the middle keeps 1/8 s spacing
    short = sample_times(1.0, 3.0, fps=8.0, num_frames=32)
    assert short.shape == (32,) and short.min() == 1.0 and short.max() == 3.0
    assert np.sum(short == 1.0) == 8 and np.sum(short == 3.0) == 8
    np.testing.assert_allclose(np.diff(short[8:24]), 1 / 8)
    with pytest.raises(ValueError):
        sample_times(3.0, 1.0, fps=8.0)


def test_spread_times_lay_the_frames_over_the_whole_clip():
    np.testing.assert_allclose(spread_times(10.0, 14.0, 4), [10.5, 11.5, 12.5, 13.5])
    # a 9 s clip, 16 frames: 9/16 s apart, the first and last half a slot from the ends, so the
    # first and last 3.5 s (which 16 frames at 8 FPS around the centre never see) get 6 frames each
    times = spread_times(0.0, 9.0, 16)
    np.testing.assert_allclose(times, (np.arange(16) + 0.5) * 9 / 16)
    assert np.sum(times < 3.5) == 6 and np.sum(times > 5.5) == 6
    centre = sample_times(0.0, 9.0, fps=8.0, num_frames=16)
    assert np.sum(centre < 3.5) == 0 and np.sum(centre > 5.5) == 0
    np.testing.assert_allclose(spread_times(7.0, 7.0, 3), [7.0, 7.0, 7.0])  # zero length: one time
    for bad in [(3.0, 1.0, 4), (0.0, 1.0, 0)]:
        with pytest.raises(ValueError):
            spread_times(*bad)


def test_cover_gaps_makes_the_unnarrated_stretches_clips_too():
    """Issue 29 item 10: a 52.8 s video with one cue at 0-5 s was one 5 s clip."""
    from indexer.features.sampling import cover_gaps
    from indexer.features.transcripts import Cue

    spans = cover_gaps(narration_spans([Cue(0.0, 5.0, "crack the egg")], 52.8), 52.8, window_sec=6.0)
    assert spans[0].narrated and spans[0].text == "crack the egg" and (spans[0].start_sec, spans[0].end_sec) == (0.0, 5.0)
    assert [s.index for s in spans] == list(range(len(spans)))
    assert all(not s.narrated and s.text == "" for s in spans[1:]) and len(spans) == 9
    assert spans[-1].end_sec == pytest.approx(52.8)
    for before, after in zip(spans, spans[1:]):  # no stretch left uncovered
        assert after.start_sec <= before.end_sec + 1e-9
    assert all(s.duration_sec == pytest.approx(6.0) for s in spans[1:])


def test_cover_gaps_keeps_a_fully_narrated_video_as_it_was():
    from indexer.features.sampling import cover_gaps
    from indexer.features.transcripts import Cue

    cues = [Cue(t, t + 5.0, f"step {t}") for t in np.arange(0.0, 30.0, 5.0)]
    spans = narration_spans(cues, 30.0)
    assert cover_gaps(spans, 30.0) == spans
