"""Pretraining ActBERT on a corpus (``actbert train``): the loop with its checkpoints and log
(``train``), the objective that one step runs (``objectives``: the paper's four masked/matching
losses plus the alignment loss), the losses as pure functions (``losses``), the masking of text,
action and region inputs (``masking``) and the training curves of a run (``curves``). It builds on
the model level of ``actbert`` and nothing here is imported by it."""
