"""The one way a value read from a catalog, a manifest or a shard becomes a path (a leaf: the
manifest and the store both use it)."""

from __future__ import annotations

from pathlib import Path

from indexer.errors import LibraryError


def checked_path(base: Path, name: object, suffix: str = "", *, nested: bool = False,
                 what: str = "name") -> Path:
    """``base / (name + suffix)`` for a ``name`` read from a catalog, a manifest or a shard: the one
    way such a value becomes a path, so a hand-edited or hostile value (``../../victim``) never makes
    a command read, overwrite or delete a file outside ``base``.

    ``name`` must be non-empty text without NUL or backslash, not absolute, with no empty, ``.`` or
    ``..`` part, and a plain file name unless ``nested`` (then ``/`` separates folders); the path,
    resolved (symlinks followed), must still lie below ``base`` resolved. Otherwise ``LibraryError``
    naming ``what`` and the value."""
    ok = isinstance(name, str) and bool(name) and "\x00" not in name and "\\" not in name
    if ok:
        parts = name.split("/")
        ok = (nested or len(parts) == 1) and all(p not in ("", ".", "..") for p in parts)
    if ok:
        path = base / (name + suffix)
        ok = Path(base).resolve() in path.resolve().parents
    if not ok:
        shown = repr(name[:80]) if isinstance(name, str) else f"of type {type(name).__name__}"
        raise LibraryError(f"{what} {shown} refused: it names no file inside {base}, or one outside the "
                           "library (separators, '..' and links out are not followed)")
    return path
