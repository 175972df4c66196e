"""Measuring ActBERT, the harness of ``actbert evaluate``: ``evaluate`` is the config and driver
(what can be measured: the leaf ``config``), ``runners`` runs each task over the evaluated split
and its protocols (``tasks``), with the model as a scorer (``scorer``), the pretraining heads on
held-out clips (``heads``), the baselines a user would try instead (``baselines``,
``raw_features``, ``dual_encoder``, ``fusion``), the probes (``probe``, ``captioner``), the
metrics, their bootstrap intervals and chance levels, the protocol of every figure
(``protocols``) and the fine-tuned models it reads back (``finetuned``). What a run leaves
behind: its result, one ``EvaluationResult`` (``result``: the JSON as a type, which every reader
reads), kept beside the model (``record``), its tables (``result_table``) and the comparisons it
loses (``known_limits``). Nothing at the model level of ``actbert``, in
``pretraining`` or in ``benchmarks`` imports from here."""
