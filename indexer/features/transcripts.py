"""Transcripts as timed cues: SRT, WebVTT, YouCook2 annotations and HowTo100M-style caption JSON.

Every reader returns ``Cue`` objects with times in seconds from the start of the video and text that is
clean for the language side of the model: markup tags (``<i>``, ``<c.colorE5E5E5>``, YouTube's inline
``<00:00:01.000>`` word timestamps, ``{\\an8}``) removed, HTML entities decoded, whitespace collapsed,
one caption line per ``\\n``. Empty cues are dropped; overlapping cues are kept.

Well-formed SRT and WebVTT files go through the maintained ``srt`` and ``webvtt-py`` parsers. Files
they reject or misread (timestamps without hours or milliseconds, comma/dot mix-ups, a broken cue that
would make ``srt`` reject the whole file, VTT without its header) go through a small tolerant parser
that skips each malformed cue with a logged warning. When no cue at all can be read a
``TranscriptError`` says why.
"""

from __future__ import annotations

import html
import io
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import srt
import webvtt

from actbert.benchmarks import youcook2
from actbert.benchmarks.annotations import BenchmarkFormatError
from indexer.errors import TranscriptError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cue:
    """One timed caption: shown from ``start_sec`` to ``end_sec`` (seconds, end >= start)."""

    start_sec: float
    end_sec: float
    text: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start_sec) and math.isfinite(self.end_sec)):
            raise ValueError(f"cue times must be finite, got {self.start_sec}..{self.end_sec}")
        if self.end_sec < self.start_sec:
            raise ValueError(f"cue ends before it starts: {self.start_sec}..{self.end_sec}")


@dataclass(frozen=True)
class AnnotatedVideo:
    """One video of an annotation file (YouCook2): its metadata and its cues in time order."""

    video_id: str
    duration_sec: float
    subset: str
    recipe_type: str
    url: str
    cues: tuple[Cue, ...]


# [h:]m:s[.,fraction]; hours and fraction optional, as found in the wild.
_TIMESTAMP = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d+))?"
_TIMING_LINE = re.compile(rf"^\s*{_TIMESTAMP}\s*-+>\s*{_TIMESTAMP}(?:\s.*)?$")
_CANONICAL_SRT = re.compile(r"^\d+:\d\d:\d\d[,.]\d{3} --> \d+:\d\d:\d\d[,.]\d{3}(?:\s.*)?$")
_CANONICAL_VTT = re.compile(r"^(?:\d{2,}:)?\d\d:\d\d\.\d{3} --> (?:\d{2,}:)?\d\d:\d\d\.\d{3}(?:\s.*)?$")
_TAG = re.compile(r"<[^<>]*>|\{\\[^{}]*\}")
_INLINE_TIMESTAMP = re.compile(r"<\d+:\d\d[:.]\d")


def decode_text(data: bytes) -> str:
    """Bytes of a text file -> str: honours UTF-8/UTF-16 BOMs, recognises BOM-less UTF-16 by its zero
    bytes, then tries UTF-8, cp1252, latin-1. Never raises: undecodable UTF-16 units (an odd
    trailing byte, a lone surrogate) become U+FFFD."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    sample = data[:4096]
    if len(sample) >= 4:
        zeros_odd, zeros_even = sample[1::2].count(0), sample[0::2].count(0)
        half = len(sample) // 2
        if zeros_odd > 0.4 * half and zeros_even < 0.05 * half:
            return data.decode("utf-16-le", errors="replace")
        if zeros_even > 0.4 * half and zeros_odd < 0.05 * half:
            return data.decode("utf-16-be", errors="replace")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    for encoding in ("utf-8", "cp1252"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding != "utf-8":
            log.info("transcript is not UTF-8; decoded as %s", encoding)
        return text
    log.info("transcript is neither UTF-8 nor cp1252; decoded as latin-1")
    return data.decode("latin-1")


def clean_cue_text(raw: str) -> str:
    """Caption markup -> plain text: tags removed, entities decoded, whitespace collapsed per line."""
    text = html.unescape(_TAG.sub("", raw))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def parse_timestamp(value: str) -> float:
    """``[h:]m:s[.,fraction]`` -> seconds, e.g. ``"01:02:03,5"`` -> 3723.5. Raises ValueError."""
    match = re.fullmatch(_TIMESTAMP, value.strip())
    if match is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return _seconds(*match.groups())


def _seconds(hours: str | None, minutes: str, seconds: str, fraction: str | None) -> float:
    total = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    if fraction:
        total += int(fraction) / 10 ** len(fraction)
    return float(total)


def _normalise_newlines(text: str) -> str:
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _make_cue(start_sec: float, end_sec: float, raw_text: str, where: str) -> Cue | None:
    """A Cue, or None (logged) when the times are reversed or the text is empty."""
    if end_sec < start_sec:
        log.warning("skipping cue %s: ends (%.3f s) before it starts (%.3f s)", where, end_sec, start_sec)
        return None
    text = clean_cue_text(raw_text)
    if not text:
        log.debug("dropping empty cue %s", where)
        return None
    return Cue(start_sec, end_sec, text)


def _parse_tolerant(text: str, kind: str) -> list[Cue]:
    """Line-oriented parser for SRT and WebVTT alike: a cue is a timing line and the text lines after it.

    Text stops at a blank line or at the next timing line (then a trailing bare number, the next SRT
    cue's index, is not text). Lines outside cues (indices, ``WEBVTT``, ``NOTE``, ``STYLE``) are ignored.
    """
    lines = text.split("\n")
    cues: list[Cue] = []
    malformed = 0
    i = 0
    while i < len(lines):
        if "-->" not in lines[i]:
            i += 1
            continue
        timing, start_line = lines[i], i + 1
        i += 1
        while i < len(lines) and lines[i].strip() and "-->" not in lines[i]:
            i += 1
        body = lines[start_line:i]
        if i < len(lines) and "-->" in lines[i] and body and body[-1].strip().isdigit():
            body = body[:-1]
        match = _TIMING_LINE.match(timing)
        if match is None:
            malformed += 1
            log.warning("%s line %d: skipping cue with malformed timing %r", kind, start_line, timing.strip())
            continue
        groups = match.groups()
        where = f"at {kind} line {start_line}"
        cue = _make_cue(_seconds(*groups[:4]), _seconds(*groups[4:]), "\n".join(body), where)
        if cue is not None:
            cues.append(cue)
    if not cues and malformed:
        raise TranscriptError(f"no {kind} cue could be parsed ({malformed} malformed timing lines)")
    return cues


def _timing_lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if "-->" in line]


def parse_srt(text: str) -> list[Cue]:
    """SRT text -> cues in file order. Raises TranscriptError when the text holds no readable cue."""
    text = _normalise_newlines(text)
    timings = _timing_lines(text)
    if not timings:
        raise TranscriptError("no SRT cue found (no 'start --> end' timing line)")
    if all(_CANONICAL_SRT.match(line) for line in timings):
        try:
            subtitles = list(srt.parse(text))
        except srt.SRTParseError as exc:
            log.debug("srt library rejected the file (%s); using the tolerant parser", exc)
        else:
            cues = [
                _make_cue(s.start.total_seconds(), s.end.total_seconds(), s.content, f"#{s.index}")
                for s in subtitles
            ]
            return [cue for cue in cues if cue is not None]
    return _parse_tolerant(text, "SRT")


def parse_webvtt(text: str, dedupe: bool | None = None) -> list[Cue]:
    """WebVTT text -> cues in file order. Raises TranscriptError when the text holds no readable cue.

    ``dedupe``: remove YouTube's rolling duplicated lines (see ``dedupe_rolling``); None (default)
    does so when the file has inline word timestamps, the mark of YouTube auto-captions.
    """
    text = _normalise_newlines(text)
    timings = _timing_lines(text)
    if not timings:
        raise TranscriptError("no WebVTT cue found (no 'start --> end' timing line)")
    cues = None
    if text.lstrip().startswith("WEBVTT") and all(_CANONICAL_VTT.match(line) for line in timings):
        try:
            captions = webvtt.from_buffer(io.StringIO(text)).captions
        except webvtt.errors.MalformedFileError as exc:
            log.debug("webvtt-py rejected the file (%s); using the tolerant parser", exc)
        else:
            # webvtt-py drops malformed cues silently: trust it only when it kept every timing line
            if len(captions) == len(timings):
                made = (
                    _make_cue(parse_timestamp(c.start), parse_timestamp(c.end), c.raw_text, f"at {c.start}")
                    for c in captions
                )
                cues = [cue for cue in made if cue is not None]
    if cues is None:
        cues = _parse_tolerant(text, "WebVTT")
    if dedupe or (dedupe is None and _INLINE_TIMESTAMP.search(text)):
        cues = dedupe_rolling(cues)
    return cues


def dedupe_rolling(cues: list[Cue]) -> list[Cue]:
    """Remove the lines that a cue repeats from the end of the cue before it (YouTube auto-captions).

    YouTube shows two lines at a time: each cue starts with the previous cue's last line, and short
    (10 ms) cues hold only that repeated line. Leading lines equal to the previous cue's trailing lines
    are dropped; cues left empty are dropped. Times are kept.
    """
    result: list[Cue] = []
    previous_lines: list[str] = []
    for cue in cues:
        lines = cue.text.split("\n")
        overlap = 0
        for n in range(min(len(lines), len(previous_lines)), 0, -1):
            if lines[:n] == previous_lines[-n:]:
                overlap = n
                break
        previous_lines = lines
        kept = lines[overlap:]
        if kept:
            result.append(Cue(cue.start_sec, cue.end_sec, "\n".join(kept)))
    return result


def _cues_from_lists(video_id: str, record: dict) -> list[Cue]:
    try:
        starts, ends, texts = record["start"], record["end"], record["text"]
    except (KeyError, TypeError) as exc:
        raise TranscriptError(f"caption JSON for {video_id!r} lacks start/end/text lists") from exc
    if not len(starts) == len(ends) == len(texts):
        raise TranscriptError(
            f"caption JSON for {video_id!r}: start/end/text lengths differ "
            f"({len(starts)}/{len(ends)}/{len(texts)})"
        )
    made = (
        _make_cue(float(s), float(e), str(t), f"{video_id}#{i}")
        for i, (s, e, t) in enumerate(zip(starts, ends, texts))
    )
    return [cue for cue in made if cue is not None]


def parse_caption_json(data: dict) -> dict[str, list[Cue]]:
    """HowTo100M-style captions ``{video_id: {"start": [...], "end": [...], "text": [...]}}`` -> cues."""
    if not isinstance(data, dict):
        raise TranscriptError("caption JSON must be an object keyed by video id")
    return {video_id: _cues_from_lists(video_id, record) for video_id, record in data.items()}


def parse_youcook2(data: dict, subset: str | None = None) -> dict[str, AnnotatedVideo]:
    """YouCook2 ``{"database": {video_id: {...}}}`` -> videos, optionally of one subset (``training``...).

    Read by the one YouCook2 reader (``actbert.benchmarks.youcook2.parse_youcook2``); each annotated
    step becomes a cue, in id order, its sentence cleaned as a caption's text (a step that ends
    before it starts is skipped with a warning, an empty one dropped)."""
    try:
        videos = youcook2.parse_youcook2(data, subset=subset)
    except BenchmarkFormatError as exc:
        raise TranscriptError(str(exc)) from exc
    return {video_id: AnnotatedVideo(
        video_id=video_id, duration_sec=video.duration_sec, subset=video.subset,
        recipe_type=video.recipe_type, url=video.url,
        cues=tuple(cue for cue in (_make_cue(s.start_sec, s.end_sec, s.sentence, f"{video_id}#{s.index}")
                                   for s in sorted(video.segments, key=lambda s: s.index))
                   if cue is not None))
        for video_id, video in videos.items()}


def load_youcook2(path: str | os.PathLike, subset: str | None = None) -> dict[str, AnnotatedVideo]:
    """Read a YouCook2 annotation JSON file (e.g. ``yc2_annotations_trainval.json``)."""
    return parse_youcook2(json.loads(Path(path).read_bytes()), subset)


def _cues_from_json(path: Path, data, video_id: str | None) -> list[Cue]:
    if isinstance(data, dict) and "database" in data:
        per_video = {vid: list(video.cues) for vid, video in parse_youcook2(data).items()}
    else:
        per_video = parse_caption_json(data)
    if video_id is None:
        if len(per_video) != 1:
            raise TranscriptError(f"{path}: holds {len(per_video)} videos; pass video_id to pick one")
        return next(iter(per_video.values()))
    if video_id not in per_video:
        raise TranscriptError(f"{path}: no video {video_id!r}")
    return per_video[video_id]


def load_transcript(
    path: str | os.PathLike, video_id: str | None = None, dedupe: bool | None = None
) -> list[Cue]:
    """Cues of one video from a transcript file, dispatched on extension, then on content.

    ``.srt``, ``.vtt`` and ``.json`` (YouCook2 or HowTo100M-style; ``video_id`` picks the video when the
    file holds several). ``dedupe`` is passed to ``parse_webvtt``. Raises TranscriptError.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TranscriptError(f"{path}: cannot read transcript: {exc.strerror}") from exc
    text = decode_text(data)
    suffix = path.suffix.lower()
    head = text.lstrip("\ufeff \t\r\n")
    try:
        if suffix == ".json" or (suffix not in (".srt", ".vtt") and head.startswith(("{", "["))):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise TranscriptError(f"invalid JSON: {exc}") from exc
            return _cues_from_json(path, parsed, video_id)
        if suffix == ".vtt" or (suffix != ".srt" and head.startswith("WEBVTT")):
            return parse_webvtt(text, dedupe=dedupe)
        return parse_srt(text)
    except TranscriptError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise TranscriptError(f"{path}: {exc}") from exc
    except (ValueError, TypeError, KeyError, IndexError, RecursionError) as exc:  # malformed content
        raise TranscriptError(f"{path}: unreadable ({type(exc).__name__}: {exc})".splitlines()[0]) from exc


_ENGLISH_TAG = re.compile(r"^(en|eng|english)([-_.].*)?$", re.IGNORECASE)


def find_sidecar(video_path: str | os.PathLike) -> Path | None:
    """The subtitle file next to a video: ``name.srt``, ``name.vtt``, ``name.<lang>.vtt``...

    Preference: an English language tag (``name.en.vtt``, ``name.en-US.srt``, shortest tag first), then
    no tag (``name.srt``), then any other language; ties are broken by file name. None when there is none.
    """
    video_path = Path(video_path)
    stem = video_path.stem
    if not video_path.parent.is_dir():
        return None
    ranked = []
    for candidate in video_path.parent.iterdir():
        suffix = candidate.suffix.lower()
        if suffix not in (".srt", ".vtt") or not candidate.is_file():
            continue
        base = candidate.name[: -len(suffix)]
        if base == stem:
            tag = ""
        elif base.startswith(stem + "."):
            tag = base[len(stem) + 1 :]
        else:
            continue
        preference = 0 if _ENGLISH_TAG.match(tag) else 1 if tag == "" else 2
        ranked.append((preference, len(tag), candidate.name, candidate))
    return min(ranked)[3] if ranked else None
