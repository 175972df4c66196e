"""What ``actbert evaluate`` can measure (tasks, systems, metrics) and ``EvalConfig``, the options
of one run: a leaf module that the harness (``evaluate``, ``runners``, ``actbert.cli.evaluate``) and the task
helpers read, so that none of them imports another for a type."""

from __future__ import annotations

from dataclasses import dataclass

from .intervals import RESAMPLES

TASKS = ("retrieval", "step_localization", "segmentation", "videoqa", "captioning", "matching",
         "masked_action")
SYSTEMS = ("actbert", "actbert_no_regions", "bm25", "minilm", "random")
MODEL_SYSTEMS = ("actbert", "actbert_no_regions")
BASELINES = ("bm25", "minilm", "random")
METRICS = {"retrieval": ("r1", "r5", "r10", "median_rank"), "step_localization": ("recall",),
           "segmentation": ("frame_accuracy",), "videoqa": ("accuracy",),
           "captioning": ("bleu3", "bleu4", "meteor", "rouge_l", "cider"),
           "matching": ("auc", "auc_same_task"), "masked_action": ("top1_masked", "top1_video_only")}
VISUAL_ONLY = "retrieval_visual_only"  # reported with "retrieval": its queries without narration
# Every unnarrated step, searched among every clip (the unnarrated windows too): what whole-video
# coverage makes reachable. ``retrieval`` and VISUAL_ONLY keep their meaning (narrated clips only).
VISUAL_ONLY_ALL_STEPS = "retrieval_visual_only_all_steps"
RESULT_TASKS = ("retrieval", VISUAL_ONLY, VISUAL_ONLY_ALL_STEPS, *TASKS[1:])
# Run only when named (``--tasks attribution``): not a table of systems and metrics, but what the
# matching score depends on (``attribution_summary``).
ANALYSES = ("attribution",)


@dataclass(frozen=True)
class EvalConfig:
    corpus: str
    checkpoint: str
    ablation_checkpoint: str | None = None
    split: str = "test"
    train_split: str = "train"
    tasks: tuple[str, ...] = TASKS
    rerank_k: int = 10
    seed: int = 0
    batch_size: int = 64            # clips per forward
    max_text_tokens: int = 64
    max_train_clips: int = 800      # train clips for the video QA probe and the captioner
    caption_epochs: int = 15
    caption_min_steps: int = 400   # small training sets train at least this many updates
    meteor: bool = True
    device: str = "cpu"
    threads: int | None = None      # torch CPU threads (None: torch's default)
    resamples: int = RESAMPLES      # bootstrap resamples of the confidence intervals
    baselines: tuple[str, ...] = BASELINES  # narration baselines need narrations: not on benchmarks
    finetuned: tuple[str, ...] = () # ``actbert finetune`` output folders, reported as *_finetuned
    dataset: str | None = None      # a paper benchmark (``actbert.benchmarks``); corpus = its label
    dual_encoder: str | None = None # an ``actbert train-dual`` folder: the system dual_encoder
    attribution_pairs: int = 100    # the attribution analysis' sample of (query, clip) pairs
    progress: bool = False          # a tqdm bar over the tasks on stderr (the CLI: on a terminal, not --json)

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS + ANALYSES]
        if unknown or not self.tasks:
            raise ValueError(f"unknown tasks {unknown}; choose from {','.join(TASKS + ANALYSES)}")
        if self.attribution_pairs < 1:
            raise ValueError(f"--attribution-pairs must be positive, got {self.attribution_pairs}")
        if self.rerank_k < 1:
            raise ValueError(f"--rerank-k must be positive, got {self.rerank_k}")
        if self.split == self.train_split:
            raise ValueError(f"the evaluated split {self.split!r} is the training split")
        if self.resamples < 1:
            raise ValueError(f"--resamples must be positive, got {self.resamples}")
