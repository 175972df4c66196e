"""Video ingestion: probing, transcripts, clip sampling and feature extraction for the ActBERT index."""
