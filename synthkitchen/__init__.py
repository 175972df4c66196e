"""SynthKitchen, the generated demo world beside the product: task plans (``tasks``), narration
(``narration``), the drawing canvas and object drawers (``canvas``, ``draw``, ``draw_food``), scenes
and motions (``scene``, ``motions``, ``render``), a video's plan (``plan``), corpus generation
(``corpus``), its ground-truth reader for ingest (``ground_truth``), its frames and boxes for the
detector trainer (``detection``), the demo library and its progress record (``demo``,
``build_progress``) and its commands (``cli``, mounted on ``indexer`` by ``indexer.cli``).

It stands on ``indexer`` and ``actbert``; they do not import it (``indexer.cli`` alone mounts its
commands and registers its reader). Importing this package imports nothing: the ground-truth reader is
registered by the programs that read SynthKitchen videos (``synthkitchen.ground_truth.register``)."""
