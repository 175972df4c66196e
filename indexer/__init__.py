"""From videos to searchable clips: ``features`` (one video -> per-clip features), ``library`` (the
catalog, ingestion, feature files, exports), ``index`` (clip vectors, FAISS, search), ``cli`` (the
``indexer`` command) and ``synthkitchen`` (the generated demo corpus). See the README's architecture
section."""

# The demo corpus's ground-truth reader, registered with indexer.library.ground_truth (the only way
# ingest and the export learn a corpus's task, split and true steps).
from indexer.synthkitchen import ground_truth as _synthkitchen_ground_truth  # noqa: F401
