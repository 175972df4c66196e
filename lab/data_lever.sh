#!/usr/bin/env bash
# Lab (#25, lead 3: more data). The whole chain, every step resumable (rerun it after a kill or on
# a fresh machine: generation is deterministic, done videos and finished runs are skipped):
#   1. seed 0's library (the shipped pair's draw: 440 videos; its val and test stay the evaluation's)
#   2. the dual-encoder baseline on it (as `make demo-model`)
#   3. SynthKitchen seed 1 (1,500 videos, the generator's defaults), ingested the same way
#   4. one corpus: seed 0 as it is + every seed-1 video as train (lab/merge_corpora.py)
#   5. stages 3 and 4 (configs/demo_stage3.json, demo_stage4.json) of both models on it, from the
#      stage-2 pair (extract it: `git show 06631cc:assets/demo/actbert/<file>`, the same for
#      actbert_no_regions, into $DATA/stage2/)
#   6. the val evaluation of the pair (compare with the shipped pair's val, lab/model_tries.md)
# Usage: DATA=/work/data nice -n 10 lab/data_lever.sh   (hours on 2 cores: 1,500 videos take about
# 2.5 h to generate and longer to ingest; each stage about an hour for both models)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
D=${DATA:?set DATA to a folder with room for two libraries}
DETECTOR=assets/demo/detector.safetensors
library() {  # library SEED VIDEOS DIR
  $PY -m indexer synthkitchen --out "$3/corpus" --videos "$2" --seed "$1" --jobs 2
  $PY -m indexer ingest "$3/corpus/videos" --library "$3/lib" --preset fast --detector $DETECTOR
  $PY -m indexer export-corpus "$3/lib"
}
library 0 440 "$D/sk"
[ -f "$D/exp/dual/DONE" ] || { $PY -m actbert train-dual --corpus "$D/sk/lib/corpus.jsonl" \
  --out "$D/exp/dual" --steps 400 --threads 1 --json > "$D/exp_dual.log" && touch "$D/exp/dual/DONE"; }
library 1 1500 "$D/sk1"
C=$D/sk1/merged/corpus.jsonl
$PY lab/merge_corpora.py "$D/sk/lib/corpus.jsonl" "$D/sk1/lib/corpus.jsonl" "$C"
stage() {  # stage RECIPE RUN INIT [--no-regions]
  OMP_NUM_THREADS=1 $PY -m actbert train --config "$1" --corpus "$C" --out "$D/runs/$2" --init "$3" \
    ${4:-} --json > "$D/runs_$2.log" 2>&1
}
stage configs/demo_stage3.json F1 "$D/stage2/actbert" & full=$!
stage configs/demo_stage3.json F1nr "$D/stage2/actbert_no_regions" --no-regions & ablation=$!
wait $full; wait $ablation
stage configs/demo_stage4.json G1 "$D/runs/F1/last" & full=$!
stage configs/demo_stage4.json G1nr "$D/runs/F1nr/last" --no-regions & ablation=$!
wait $full; wait $ablation
for run in G1 G1nr; do  # a copy: the val evaluation writes its policies beside the weights
  rm -rf "$D/exp/$run" && cp -r "$D/runs/$run/last" "$D/exp/$run" && rm -f "$D/exp/$run/trainer.pt"
done
$PY -m actbert evaluate --corpus "$D/sk/lib/corpus.jsonl" --checkpoint "$D/exp/G1" \
  --ablation-checkpoint "$D/exp/G1nr" --dual-encoder "$D/exp/dual" --json --split val --threads 2 \
  > "$D/exp/G1_val.json"
echo "val evaluation of the seed 0 + seed 1 pair: $D/exp/G1_val.json"
