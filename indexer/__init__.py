"""From videos to searchable clips: ``features`` (one video -> per-clip features), ``library`` (the
catalog, ingestion, feature files, exports), ``index`` (clip vectors, FAISS, search), ``cli`` (the
``indexer`` command; it also mounts the commands of ``synthkitchen``, the generated demo world that
stands beside this package). See docs/architecture.md.

Importing this package imports nothing else: the demo corpus's ground-truth reader is registered
by the programs that read it (``synthkitchen.ground_truth.register``)."""
