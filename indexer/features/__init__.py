"""From one video file to per-clip features: decoding (``video``, ``video_writer``), subtitles
(``transcripts``), clip spans and frame times (``sampling``), box geometry (``boxes``), verbs from the
narration (``verbs``, ``verb_classifier``), action features (``actions`` with the I3D port ``i3d``),
region features (``regions`` with the detectors of ``detector``) and PaddleVideo-style pre-extracted
features (``feature_import``). Nothing here knows about a library or the index."""
