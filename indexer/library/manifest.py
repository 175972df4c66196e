"""library.json, the library's manifest, as one typed record: ``LibraryManifest``.

```
{"format": 1, "created": 1767225600.0,
 "settings": {...},                   the ingest settings (indexer.library.ingest.IngestSettings)
 "model": {"checkpoint": "models/pretrain/last", "fingerprint": "9f0c...", "max_regions": 36} | null,
 "model_no_regions": {"checkpoint": ...},               its no-region ablation (optional)
 "sources": ["/home/me/videos"],      the folders named to ingest (the app serves videos under them)
 "verbs": ["cut", "pour", ...],       the verb vocabulary of the last corpus export
 "extractors": {"actions": {"name", "version", "preset"}, "regions": {"name", "version", "classes"}},
 "index_backend": {"name": "faiss"} | {"name": "milvus", "uri": ..., "collection": ...},
 "demo": {"<stage>": {...}, ...}}     the demo build's finished stages (synthkitchen.demo)
```

``LibraryManifest.from_json`` is the one place its shape is checked (a one-line ``LibraryError``
naming the file); ``to_json`` gives back every key read, in its order, with the values as found:
keys this version does not know, and a known key whose value it does not read (a ``null``), are
kept in ``extra``. The library writes it (``Library.update_manifest``) with sorted keys.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from indexer.errors import LibraryError
from indexer.library.paths import checked_path

__all__ = ["LIBRARY_FORMAT", "MODEL_ROLES", "LibraryManifest", "ModelEntry", "read_manifest"]

LIBRARY_FORMAT = 1
MODEL_ROLES = ("model", "model_no_regions")  # the keys naming a model (read as a ModelEntry)
_OBJECTS = ("settings", "extractors", "demo", "index_backend")  # JSON objects when present
_STRING_LISTS = ("sources", "verbs")
# library.json's keys in the order a new library writes them (then the optional ones)
_KEYS = ("format", "created", "settings", "model", "model_no_regions", "sources", "verbs", "extractors",
         "index_backend", "demo")


@dataclass(frozen=True)
class ModelEntry:
    """A model the library names (``model``: the one that made its vectors; ``model_no_regions``:
    its no-region ablation): the checkpoint folder (relative to the library, or absolute), the
    fingerprint of its weights (``indexer.index.embed.model_fingerprint``) and its region limit
    (``config.max_regions``). ``extra``: its other keys, and those of the three whose value is not
    of their type, as found (``to_json`` gives them back after the three). The index manifest
    records the same entry (``to_json()``), so an index built by another model is told apart."""

    checkpoint: str
    fingerprint: str | None = None
    max_regions: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> "ModelEntry":
        """The entry of a checked object (its ``checkpoint`` is a string)."""
        fingerprint, max_regions = record.get("fingerprint"), record.get("max_regions")
        typed = {"checkpoint": record["checkpoint"],
                 "fingerprint": fingerprint if isinstance(fingerprint, str) else None,
                 "max_regions": max_regions if isinstance(max_regions, int) and not isinstance(max_regions, bool)
                 else None}
        return cls(**typed, extra={k: copy.deepcopy(v) for k, v in record.items() if typed.get(k) is None})

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"checkpoint": self.checkpoint}
        if self.fingerprint is not None:
            record["fingerprint"] = self.fingerprint
        if self.max_regions is not None:
            record["max_regions"] = self.max_regions
        return {**record, **copy.deepcopy(dict(self.extra))}

    def folder(self, root: str | Path) -> Path:
        """The checkpoint folder: ``checkpoint`` when absolute (a folder the user named), else
        inside ``root``, checked to stay there (``checked_path``: ``LibraryError`` otherwise)."""
        path = Path(self.checkpoint)
        return path if path.is_absolute() else checked_path(Path(root), self.checkpoint, nested=True,
                                                            what="model folder")


@dataclass(frozen=True)
class LibraryManifest:
    """library.json (the module docstring shows it). Collections absent from the file read as
    empty; ``keys`` are the file's keys in their order (derived from the fields set when not
    given), so ``to_json`` writes back exactly the keys it read. Change one by writing it
    (``Library.update_manifest``), which reads the result back through ``from_json``."""

    format: int = LIBRARY_FORMAT
    created: float | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    model: ModelEntry | None = None
    model_no_regions: ModelEntry | None = None
    sources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    extractors: Mapping[str, Any] = field(default_factory=dict)
    index_backend: Mapping[str, Any] | None = None
    demo: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.keys:  # built in code: the fields set, then the extra keys
            set_ = [k for k in _KEYS if k == "format" or getattr(self, k) != _default(k)]
            object.__setattr__(self, "keys", tuple(dict.fromkeys([*set_, *self.extra])))

    # ----- reading and writing ------------------------------------------------------------------
    @classmethod
    def new(cls, settings: Mapping[str, Any]) -> "LibraryManifest":
        """The manifest ``Library.create`` writes: format, creation time, settings, no model."""
        return cls(created=time.time(), settings=dict(settings), extra={"model": None},
                   keys=("format", "created", "settings", "model"))

    @classmethod
    def from_json(cls, data: Any, source: str | Path = "library.json") -> "LibraryManifest":
        """The manifest of parsed JSON ``data``, checked: a one-line ``LibraryError`` naming
        ``source`` (the file) when it does not have the shape its readers rely on, or another format."""
        check_shape(data, Path(source))
        typed: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in MODEL_ROLES and value is not None:
                typed[key] = ModelEntry.from_json(value)
            elif key in _STRING_LISTS and value is not None:
                typed[key] = tuple(value)
            elif key in (*_OBJECTS, "format") and value is not None:
                typed[key] = copy.deepcopy(value)
            elif key == "created" and isinstance(value, (int, float)) and not isinstance(value, bool):
                typed[key] = value
            else:
                extra[key] = copy.deepcopy(value)
        return cls(**typed, extra=extra, keys=tuple(data))

    def to_json(self) -> dict[str, Any]:
        """The JSON object: every key of ``keys``, in that order, with its value as read."""
        values = {"format": self.format, "created": self.created, "settings": dict(self.settings),
                  "model": self.model and self.model.to_json(),
                  "model_no_regions": self.model_no_regions and self.model_no_regions.to_json(),
                  "sources": list(self.sources), "verbs": list(self.verbs),
                  "extractors": dict(self.extractors),
                  "index_backend": None if self.index_backend is None else dict(self.index_backend),
                  "demo": dict(self.demo)}
        return {key: copy.deepcopy(self.extra[key] if key in self.extra else values[key]) for key in self.keys}

    # ----- what readers ask ---------------------------------------------------------------------
    def entry(self, role: str) -> ModelEntry | None:
        """The model named under ``role`` (one of ``MODEL_ROLES``), None when none is."""
        if role not in MODEL_ROLES:
            raise ValueError(f"role must be one of {MODEL_ROLES}, got {role!r}")
        return getattr(self, role)

    @property
    def model_fingerprint(self) -> str | None:
        """The fingerprint of the model that made the vectors (None: no model, or none recorded)."""
        return self.model.fingerprint if self.model else None

    @property
    def region_classes(self) -> list[str]:
        """The detector's class names (index 0 = background)."""
        return list((self.extractors.get("regions") or {}).get("classes") or [])

    @property
    def action_extractor(self) -> Mapping[str, Any]:
        """The action extractor's record (``name``, ``version``, ``preset``); empty when none ran."""
        return self.extractors.get("actions", {})


def _default(key: str) -> Any:
    spec = LibraryManifest.__dataclass_fields__[key]
    return spec.default_factory() if callable(spec.default_factory) else spec.default


def read_manifest(path: str | Path) -> LibraryManifest:
    """``LibraryManifest`` of the file at ``path``; ``LibraryError`` (one line) when it is
    unreadable or misshapen."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LibraryError(f"{path} is unreadable ({exc})") from exc
    return LibraryManifest.from_json(data, path)


def check_shape(manifest: Any, path: Path) -> None:
    """A one-line ``LibraryError`` when library.json does not have the shape its readers rely on
    (an object; objects, model entries naming their ``checkpoint`` and lists of strings where
    those are read), or is of another format than ``LIBRARY_FORMAT``."""
    def refuse(problem: str) -> None:
        raise LibraryError(f"{path}: {problem}; fix the file or rebuild the library with "
                           "`python -m indexer ingest`")

    if not isinstance(manifest, dict):
        refuse(f"the manifest is a JSON {type(manifest).__name__}, not an object")
    for key in _OBJECTS:
        if manifest.get(key) is not None and not isinstance(manifest[key], dict):
            refuse(f'"{key}" is {json.dumps(manifest[key])[:60]}, not an object')
    for key in MODEL_ROLES:
        model = manifest.get(key)
        if model is not None and not (isinstance(model, dict) and isinstance(model.get("checkpoint"), str)):
            refuse(f'"{key}" is {json.dumps(model)[:60]}, not an object naming its "checkpoint" folder')
    for key in _STRING_LISTS:
        value = manifest.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            refuse(f'"{key}" is {json.dumps(value)[:60]}, not a list of strings')
    found = manifest.get("format")
    if found != LIBRARY_FORMAT or isinstance(found, bool):
        if str(found).strip() == str(LIBRARY_FORMAT):  # "1": a hand edit, not another version
            raise LibraryError(f"{path}: \"format\" is {found!r} ({type(found).__name__}); "
                               f"it must be the number {LIBRARY_FORMAT}: edit library.json")
        raise LibraryError(f"{path.parent}: library format {found!r} is not {LIBRARY_FORMAT}; rebuild it "
                           "with `python -m indexer ingest`")
