"""indexer.features.transcripts on hand-written messy subtitle files and the real YouCook2 annotation file."""

import json
import logging

import pytest

from indexer.features.transcripts import (
    Cue,
    TranscriptError,
    clean_cue_text,
    dedupe_rolling,
    find_sidecar,
    load_transcript,
    load_youcook2,
    parse_srt,
    parse_timestamp,
    parse_webvtt,
)

YOUCOOK2 = "youcook2/yc2_annotations_trainval.json"  # in tests/fixtures


def spans(cues):
    return [(c.start_sec, c.end_sec, c.text) for c in cues]


def test_parse_timestamp_variants():
    assert parse_timestamp("01:02:03,500") == 3723.5
    assert parse_timestamp("01:02:03.5") == 3723.5
    assert parse_timestamp("02:03.250") == 123.25
    assert parse_timestamp("00:00:07") == 7.0
    assert parse_timestamp("2:03") == 123.0
    with pytest.raises(ValueError):
        parse_timestamp("garbage")


def test_clean_cue_text():
    raw = "<i>Salt</i> &amp; pepper, it&#39;s <c.colorE5E5E5>fine</c>\n  {\\an8}second   line \n\n"
    assert clean_cue_text(raw) == "Salt & pepper, it's fine\nsecond line"
    # an escaped tag is text, not markup
    assert clean_cue_text("a &lt;b&gt; c") == "a <b> c"


def test_canonical_srt():
    text = (
        "1\n00:00:01,000 --> 00:00:02,500\n<i>Hello</i> &amp; welcome\n\n"
        "2\n00:00:02,000 --> 00:00:04,000\nfirst line\nsecond line\n\n"
        "3\n00:00:05,000 --> 00:00:06,000\n\n\n"
        "4\n01:00:00,000 --> 01:00:01,250\nlate\n"
    )
    # overlapping cues 1 and 2 are kept; the empty cue 3 is dropped
    assert spans(parse_srt(text)) == [
        (1.0, 2.5, "Hello & welcome"),
        (2.0, 4.0, "first line\nsecond line"),
        (3600.0, 3601.25, "late"),
    ]


def test_messy_srt_with_crlf_short_timestamps_and_a_broken_cue(caplog):
    text = (
        "1\r\n00:01,000 --> 00:02.5\r\nno hours, dot and short fraction\r\n\r\n"
        "2\r\n00:00:03 --> 00:00:04\r\nno milliseconds\r\n\r\n"
        "3\r\n00:00:05,000 --> soon\r\nbroken timing\r\n\r\n"
        "4\r\n00:00:08,000 --> 00:00:07,000\r\nreversed\r\n\r\n"
        "5\r\n00:00:09,000 --> 00:00:10,000\r\nno blank line after me\r\n"
        "6\r\n00:00:11,000 --> 00:00:12,000\r\nlast\r\n"
    )
    with caplog.at_level(logging.WARNING, logger="indexer.features.transcripts"):
        cues = parse_srt(text)
    assert spans(cues) == [
        (1.0, 2.5, "no hours, dot and short fraction"),
        (3.0, 4.0, "no milliseconds"),
        (9.0, 10.0, "no blank line after me"),
        (11.0, 12.0, "last"),
    ]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "malformed timing '00:00:05,000 --> soon'" in messages
    assert "ends (7.000 s) before it starts (8.000 s)" in messages


def test_nothing_parses_is_an_error():
    with pytest.raises(TranscriptError, match="2 malformed timing lines"):
        parse_srt("1\n00:00:01 --> x\nhi\n\n2\ny --> 00:00:02\nthere\n")
    with pytest.raises(TranscriptError, match="no SRT cue found"):
        parse_srt("just some words\n")
    with pytest.raises(TranscriptError, match="no WebVTT cue found"):
        parse_webvtt("WEBVTT\n\nNOTE nothing here\n")


def test_webvtt_with_header_notes_styles_and_markup():
    text = (
        "WEBVTT - cooking show\nKind: captions\nLanguage: en\n\n"
        "NOTE written by hand\n\n"
        "STYLE\n::cue { color: yellow }\n\n"
        "intro\n00:01.000 --> 00:02.000 align:start position:10%\n<v Chef>Crack</v> the eggs &amp; whisk\n\n"
        "00:00:02.000 --> 00:00:03.500\nit&#39;s <b>easy</b>\n"
    )
    assert spans(parse_webvtt(text)) == [(1.0, 2.0, "Crack the eggs & whisk"), (2.0, 3.5, "it's easy")]


def test_webvtt_tolerant_cases():
    # no header, comma separator, no milliseconds, one malformed cue in the middle
    text = (
        "00:00:01,000 --> 00:00:02,000\ncomma\n\n"
        "00:00:03 --> 00:00:04\nno millis\n\n"
        "00:00:05.000 --> broken\nskipped\n\n"
        "00:00:06.000 --> 00:00:07.000\nlast\n"
    )
    assert spans(parse_webvtt(text)) == [(1.0, 2.0, "comma"), (3.0, 4.0, "no millis"), (6.0, 7.0, "last")]


YOUTUBE_AUTO_VTT = """WEBVTT
Kind: captions
Language: en

00:00:00.000 --> 00:00:02.310 align:start position:0%
 
hello<00:00:00.560><c> everyone</c><00:00:00.880><c> welcome</c>

00:00:02.310 --> 00:00:02.320 align:start position:0%
hello everyone welcome
 

00:00:02.320 --> 00:00:05.000 align:start position:0%
hello everyone welcome
today<00:00:02.800><c> we</c><00:00:03.100><c> make</c><00:00:03.500><c> pasta</c>

00:00:05.000 --> 00:00:05.010 align:start position:0%
today we make pasta
 

00:00:05.010 --> 00:00:07.000 align:start position:0%
today we make pasta
first<00:00:05.500><c> boil</c><00:00:06.000><c> water</c>
"""


def test_youtube_auto_captions_are_deduplicated():
    assert spans(parse_webvtt(YOUTUBE_AUTO_VTT)) == [
        (0.0, 2.31, "hello everyone welcome"),
        (2.32, 5.0, "today we make pasta"),
        (5.01, 7.0, "first boil water"),
    ]
    # without dedupe the rolling duplicates remain (5 cues, the repeated lines included)
    raw = parse_webvtt(YOUTUBE_AUTO_VTT, dedupe=False)
    assert len(raw) == 5 and raw[2].text == "hello everyone welcome\ntoday we make pasta"


def test_dedupe_keeps_ordinary_cues():
    cues = [Cue(0, 1, "cut the onion"), Cue(1, 2, "the onion is cut"), Cue(2, 3, "yes"), Cue(3, 4, "yes")]
    # only whole repeated lines go: the second "yes" repeats the first, a prefix-sharing line stays
    assert spans(dedupe_rolling(cues)) == [(0, 1, "cut the onion"), (1, 2, "the onion is cut"), (2, 3, "yes")]


def test_encodings_and_bom(tmp_path):
    body = "1\n00:00:01,000 --> 00:00:02,000\nCrème brûlée – café\n"
    (tmp_path / "utf8bom.srt").write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    (tmp_path / "cp1252.srt").write_bytes(body.encode("cp1252"))
    (tmp_path / "utf16.srt").write_bytes(body.encode("utf-16"))
    (tmp_path / "bom.vtt").write_bytes(b"\xef\xbb\xbfWEBVTT\n\n00:01.000 --> 00:02.000\nCr\xc3\xa8me\n")
    for name in ("utf8bom.srt", "cp1252.srt", "utf16.srt"):
        assert spans(load_transcript(tmp_path / name)) == [(1.0, 2.0, "Crème brûlée – café")], name
    assert spans(load_transcript(tmp_path / "bom.vtt")) == [(1.0, 2.0, "Crème")]
    latin1 = "1\n00:00:01,000 --> 00:00:02,000\nna\x8fve\n".encode("latin-1")  # 0x8F is undefined in cp1252
    (tmp_path / "latin1.srt").write_bytes(latin1)
    assert load_transcript(tmp_path / "latin1.srt")[0].text == "na\x8fve"


def test_load_transcript_dispatches_on_content(tmp_path):
    (tmp_path / "captions.txt").write_text("WEBVTT\n\n00:01.000 --> 00:02.000\nvtt inside\n")
    assert load_transcript(tmp_path / "captions.txt")[0].text == "vtt inside"
    (tmp_path / "subs.txt").write_text("1\n00:00:01,000 --> 00:00:02,000\nsrt inside\n")
    assert load_transcript(tmp_path / "subs.txt")[0].text == "srt inside"
    (tmp_path / "bad.srt").write_text("hello\n")
    with pytest.raises(TranscriptError, match=r"bad\.srt: no SRT cue found"):
        load_transcript(tmp_path / "bad.srt")
    with pytest.raises(TranscriptError, match="cannot read"):
        load_transcript(tmp_path / "absent.srt")


def test_howto100m_caption_json(tmp_path):
    captions = {
        "vidA": {"start": [0.5, 3.0, 6.0], "end": [3.2, 5.0, 6.0], "text": ["so today we", "", "chop chop"]},
        "vidB": {"start": [1], "end": [2], "text": ["only one"]},
    }
    path = tmp_path / "caption.json"
    path.write_text(json.dumps(captions))
    # the empty cue is dropped; a zero-length cue is kept
    expected = [(0.5, 3.2, "so today we"), (6.0, 6.0, "chop chop")]
    assert spans(load_transcript(path, video_id="vidA")) == expected
    with pytest.raises(TranscriptError, match="holds 2 videos; pass video_id"):
        load_transcript(path)
    with pytest.raises(TranscriptError, match="no video 'vidC'"):
        load_transcript(path, video_id="vidC")
    path.write_text(json.dumps({"vidA": {"start": [1, 2], "end": [2], "text": ["a", "b"]}}))
    with pytest.raises(TranscriptError, match="lengths differ"):
        load_transcript(path)


def test_real_youcook2_annotations(fixtures):
    path = fixtures / YOUCOOK2
    videos = load_youcook2(path)
    assert len(videos) == 1790
    assert sum(v.subset == "training" for v in videos.values()) == 1333
    video = videos["GLd3aX16zBg"]
    assert video.duration_sec == pytest.approx(241.62) and video.recipe_type == "113"
    assert video.cues[0] == Cue(90.0, 102.0, "spread margarine on two slices of white bread")
    assert video.cues[4] == Cue(173.0, 174.0, "cut the sandwich in half diagonally")
    assert len(load_youcook2(path, subset="validation")) == 457
    # the generic loader reads one video out of the same file
    assert load_transcript(path, video_id="GLd3aX16zBg") == list(video.cues)


def test_find_sidecar(tmp_path):
    video = tmp_path / "pasta.day1.mp4"
    video.write_bytes(b"")
    assert find_sidecar(video) is None
    for name in ("pasta.day1.de.vtt", "pasta.day10.srt", "other.srt", "pasta.day1.txt"):
        (tmp_path / name).write_text("x")
    assert find_sidecar(video).name == "pasta.day1.de.vtt"  # any language beats nothing
    (tmp_path / "pasta.day1.srt").write_text("x")
    assert find_sidecar(video).name == "pasta.day1.srt"  # untagged beats another language
    (tmp_path / "pasta.day1.en-US.srt").write_text("x")
    assert find_sidecar(video).name == "pasta.day1.en-US.srt"  # English beats untagged
    (tmp_path / "pasta.day1.en.vtt").write_text("x")
    assert find_sidecar(video).name == "pasta.day1.en.vtt"  # the plainest English tag first
