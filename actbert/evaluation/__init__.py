"""Measuring ActBERT: the paper's downstream evaluations (``actbert evaluate``: ``evaluate`` is the
config and driver, ``runners`` runs each task, ``cli`` is the command), the evaluated split and
its protocols (``tasks``), the model as a scorer (``scorer``), the pretraining heads on held-out
clips (``heads``), the baselines a user would try instead, the metrics and their bootstrap
intervals, the fine-tuned protocols (``actbert finetune``: ``finetune``, ``finetune_tasks``), the
paper's benchmarks (``benchmarks``, ``benchmark_corpus``, ``benchmark_eval``, ``msrvtt``) and what
a run leaves behind: the record beside the model (``record``), the charts (``plot``) and the report
card (``report``). Nothing at the model level of ``actbert`` imports from here."""
