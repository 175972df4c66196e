"""The paper's benchmarks (section 4.2): one module per dataset with the readers of its published
annotation files (``youcook2``, ``msrvtt``, ``crosstask``, ``coin``; what they share:
``annotations``), the registry that names them (``registry``), a benchmark's files and
pre-extracted features as the corpus ``evaluate`` and ``finetune`` read (``corpus``), and the
paper's own figures on them, as data (``paper``). Importing the package loads none of them."""
