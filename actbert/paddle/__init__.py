"""The released PaddleVideo checkpoint: reading its ``.pdparams`` into our model (``convert``, which
``ActBertForPretraining.from_paddle`` calls: it stands on the model floor) and its zero-shot MSR-VTT
retrieval as PaddleVideo runs it (``parity``, ``actbert evaluate-msrvtt``). Importing the package
loads neither."""
