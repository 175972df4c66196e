"""Clip vectors and search: embedding clips with the library's model (``embed``), the engines
behind one ``VectorIndex`` protocol (``vector_index``): the FAISS index (``clip_index``, validated
inputs in ``vectors``, thread control in ``concurrency``, recall calibration in ``recall``,
persistence in ``files``) and Milvus (``milvus_backend``, chosen by ``backends``), the index
brought to the catalog (``reconcile``), the query path (``search``) and the services the app and
the commands share (``service``: the library's ``status`` and ingest, its clips)."""
