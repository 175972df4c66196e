"""The library folder: the SQLite catalog (``catalog``, the only module that speaks SQL), the
folder and its writer lock (``store``), its manifest library.json as one typed record (``manifest``), ingestion (``ingest``) of the videos it finds
(``discovery``: their ids, fingerprints, shards and sidecar transcripts) with pluggable
ground-truth readers (``ground_truth``), the training-corpus export (``export``), browser previews
(``preview``), the verb classifier trained on a library (``verb_training``) and what the clip
inspector and attention explorer show (``inspector``)."""
