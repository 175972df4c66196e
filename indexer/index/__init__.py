"""Clip vectors and search: embedding clips with the library's model (``embed``), the FAISS index
(``clip_index``, validated inputs in ``vectors``, thread control in ``concurrency``, recall
calibration in ``recall``, persistence in ``files``), the index brought to the catalog
(``reconcile``) and the query path (``search``)."""
