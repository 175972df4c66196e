"""Measuring ActBERT: the paper's downstream evaluations (``actbert evaluate``: ``evaluate`` runs
them, ``cli`` is its command), the evaluated split and its protocols (``tasks``), the pretraining
heads on held-out clips (``heads``), the baselines a user would try instead, the metrics and their
bootstrap intervals, the fine-tuned protocols (``actbert finetune``: ``finetune``,
``finetune_tasks``), the paper's benchmarks (``benchmarks``, ``benchmark_corpus``,
``benchmark_eval``, ``msrvtt``) and what a run leaves behind: the record beside the model
(``record``), the charts (``plot``) and the report card (``report``). The model level of
``actbert`` never imports from here."""
