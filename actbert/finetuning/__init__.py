"""Training for the downstream evaluations: the paper's fine-tuned protocols (``actbert finetune``:
``finetune`` runs them, ``protocols`` says what each trains and validates on) and the dual-encoder
baseline's contrastive training (``actbert train-dual``: ``dual_training``). Both stand on the
evaluation harness (its splits, scorers and probes) and write what it reads back
(``evaluate --finetuned``, ``--dual-encoder``); nothing in ``actbert.evaluation`` imports from here."""
