"""Sizes a FAISS file declares, checked against the file's own length before FAISS reads it.

Why: ``faiss.read_index`` reads each array's length from the file and allocates (and zero-fills) that
many elements before reading them, so a 210-byte file declaring an 8 GB array takes 8 GB of memory
before the read fails. ``check_declared_sizes`` walks the structure of the index types this library
writes (``IDMap2,Flat``; ``IVF{K}_HNSW32,Flat`` and ``IVF{K}_HNSW32,PQ{M}`` with a hash-table direct
map; see ``clip_index``) without allocating, and refuses any array longer than the bytes left in the
file, any count that disagrees with its header, any other index type, and trailing bytes. The layout
follows FAISS's ``impl/index_read.cpp`` (little-endian, ``size_t`` array lengths).
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

import numpy as np


class DeclaredSizeError(ValueError):
    """The file declares more than it holds, or is not an index type this library writes."""


class _Cursor:
    """Reads little-endian fields from a byte buffer; every length is checked before it is used."""

    def __init__(self, data, name: str) -> None:
        self.data, self.name, self.pos = data, name, 0

    def _take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise DeclaredSizeError(f"ends at byte {len(self.data)} inside a header (truncated)")
        value = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += size
        return value

    def u8(self) -> int:
        return self._take("<B")

    def i32(self) -> int:
        return self._take("<i")

    def u64(self) -> int:
        return self._take("<Q")

    def i64(self) -> int:
        return self._take("<q")

    def fourcc(self) -> str:
        raw = bytes(self.data[self.pos:self.pos + 4])
        self.pos += 4
        return raw.decode("latin-1")

    def skip(self, count: int, item_bytes: int, what: str) -> int:
        """Skip ``count`` items of ``item_bytes``; refused when the file has fewer bytes left."""
        left = len(self.data) - self.pos
        if count * item_bytes > left:
            raise DeclaredSizeError(f"declares {count:,} x {item_bytes} bytes of {what} with "
                                    f"{left:,} bytes left in the file")
        self.pos += count * item_bytes
        return count

    def array(self, item_bytes: int, what: str) -> int:
        """A FAISS vector: its ``size_t`` length, then the items; returns the length."""
        return self.skip(self.u64(), item_bytes, what)


def _header(c: _Cursor) -> tuple[int, int]:
    """An ``Index`` header; returns (d, ntotal)."""
    d, ntotal = c.i32(), c.i64()
    c.i64(), c.i64(), c.u8()  # two dummies, is_trained
    if c.i32() > 1:  # metric_type; metric_arg follows for the others
        c._take("<f")
    if d <= 0 or ntotal < 0:
        raise DeclaredSizeError(f"declares width {d} and {ntotal} vectors")
    return d, ntotal


def _index(c: _Cursor) -> tuple[int, int]:
    """Walk one index (recursively); returns its (d, ntotal)."""
    kind = c.fourcc()
    if kind in ("IxFI", "IxF2"):
        d, ntotal = _header(c)
        floats = c.array(4, "vectors")
        if floats != ntotal * d:
            raise DeclaredSizeError(f"holds {floats:,} floats for {ntotal:,} vectors of width {d}")
        return d, ntotal
    if kind == "IxM2":
        d, ntotal = _header(c)
        _index(c)
        if c.array(8, "ids") != ntotal:
            raise DeclaredSizeError(f"holds another number of ids than its {ntotal:,} vectors")
        return d, ntotal
    if kind == "IHNf":
        d, ntotal = _header(c)
        for item_bytes, what in ((8, "level probabilities"), (4, "neighbour counts"), (4, "levels"),
                                 (8, "offsets"), (4, "neighbours")):
            c.array(item_bytes, f"HNSW {what}")
        for _ in range(5):  # entry_point, max_level, efConstruction, efSearch, a dummy
            c.i32()
        _index(c)
        return d, ntotal
    if kind in ("IwFl", "IwPQ"):
        return _ivf(c, kind)
    raise DeclaredSizeError(f"holds a FAISS {kind!r} index, not a type this library writes")


def _ivf(c: _Cursor, kind: str) -> tuple[int, int]:
    d, ntotal = _header(c)
    nlist, _nprobe = c.u64(), c.u64()
    _, centroids = _index(c)
    if centroids != nlist:
        raise DeclaredSizeError(f"declares {nlist:,} lists and {centroids:,} centroids")
    direct_map = c.u8()
    c.array(8, "direct map")
    if direct_map == 2:  # DirectMap::Hashtable: (id, list entry) pairs
        c.array(16, "direct map hash table")
    code_size = 4 * d
    if kind == "IwPQ":
        c.u8()  # by_residual
        code_size = c.u64()
        _pq_d, pq_m, pq_bits = c.u64(), c.u64(), c.u64()
        if pq_bits > 16 or pq_m > d:
            raise DeclaredSizeError(f"declares a product quantizer of {pq_m} x {pq_bits} bits")
        c.array(4, "PQ centroids")
    if c.fourcc() != "ilar" or c.u64() != nlist or c.u64() != code_size:
        raise DeclaredSizeError("holds inverted lists of another kind or shape than its header")
    if c.fourcc() != "full":
        raise DeclaredSizeError("holds sparse inverted-list sizes (not written by this library)")
    count = c.u64()
    if count != nlist:
        raise DeclaredSizeError(f"holds {count:,} list sizes for {nlist:,} lists")
    start = c.pos
    c.skip(count, 8, "list sizes")
    # Summed in float64 (crafted sizes may overflow uint64); no view of the mmap outlives this line.
    total = int(np.frombuffer(c.data, dtype="<u8", count=count, offset=start).sum(dtype=np.float64))
    if total != ntotal:
        raise DeclaredSizeError(f"its lists hold {total:,} entries, its header {ntotal:,}")
    c.skip(total, code_size + 8, "list codes and ids")
    return d, ntotal


def check_declared_sizes(path: Path) -> None:
    """Raise ``DeclaredSizeError`` (a one-line reason) unless every size ``path`` declares fits in it."""
    with open(path, "rb") as handle:
        if handle.seek(0, 2) == 0:
            raise DeclaredSizeError("is empty")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            cursor = _Cursor(data, str(path))
            _index(cursor)
            if cursor.pos != len(data):
                raise DeclaredSizeError(f"has {len(data) - cursor.pos:,} bytes after its index")
