"""SynthKitchen, the generated demo corpus: task plans (``tasks``), narration (``narration``), the
drawing canvas and object drawers (``canvas``, ``draw``, ``draw_food``), scenes and motions
(``scene``, ``motions``, ``render``), corpus generation and its command (``corpus``), its
ground-truth reader for ingest (``ground_truth``), detector training on its boxes
(``detector_train``) and the demo library (``demo``). The product modules reach it only through
``indexer.library.ground_truth``."""
