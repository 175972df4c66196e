#!/usr/bin/env bash
# Lab (#25, lever 1 of session 43: the action CNN's frames over the whole clip). The whole chain,
# every step resumable (rerun it after a kill or on a fresh machine: generation is deterministic,
# done videos, finished runs and finished evaluations are skipped):
#   1. seed 0 (the shipped pair's draw, 440 videos) ingested with `--action-sampling spread`
#   2. the dual-encoder baseline on it (as `make demo-model`)
#   3. SP5 / SP5nr: C0's stage-5 run (configs/demo_stage5.json, seed 2) from G1 / G1nr (the pair
#      shipped at f6b56b1) on the spread features, and its val evaluation
#   4. seed 1's first 1,000 videos ingested the same way, merged with seed 0 (every seed-1 video train)
#   5. SP / SPnr: stages 3, 4 and 5 (configs/demo_stage{3,4,5}.json) from the shipped stage-2 pair
#      (e0b0e07) on the spread features (3-4 on the merged corpus, 5 on seed 0), and its val evaluation
# Usage: DATA=/work/data lab/spread_lever.sh [sp5|sp]   (sp5: steps 1-3, about 75 min on 2 cores;
# sp: all, about 3.5 h). Compare with C0's val figures in lab/model_tries.md (same rule).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
D=${DATA:?set DATA to a folder with room for two libraries}
WHAT=${1:-sp5}
DETECTOR=assets/demo/detector.safetensors
library() {  # library SEED VIDEOS CORPUS_DIR LIBRARY
  [ -f "$4/corpus.jsonl" ] && return
  $PY -m indexer synthkitchen --out "$3" --videos "$2" --seed "$1" --jobs 2
  $PY -m indexer ingest "$3/videos" --library "$4" --preset fast --action-sampling spread \
    --detector $DETECTOR --json > "$4.ingest.json"
  $PY -m indexer export-corpus "$4"
}
extract() {  # extract COMMIT DEST: a shipped pair from the repository's history
  for m in actbert actbert_no_regions; do
    [ -f "$2/$m/model.safetensors" ] && continue
    mkdir -p "$2/$m"
    for f in $(git ls-tree --name-only "$1" "assets/demo/$m/"); do git show "$1:$f" > "$2/$m/$(basename "$f")"; done
  done
}
train() {  # train RECIPE CORPUS OUT INIT [--no-regions]: one thread, beside its twin
  OMP_NUM_THREADS=1 $PY -m actbert train --config "$1" --corpus "$2" --out "$3" --init "$4" ${5:-} \
    --json > "$3.log" 2>&1
}
pair() {  # pair RECIPE CORPUS RUNS FULL_INIT NO_REGIONS_INIT
  mkdir -p "$3"
  train "$1" "$2" "$3/full" "$4" & full=$!
  train "$1" "$2" "$3/no_regions" "$5" --no-regions & ablation=$!
  wait $full; wait $ablation
}
val() {  # val RUNS NAME: ship the pair's last checkpoints (the evaluation writes its policies there)
  [ -s "$D/sp/$2_val.json" ] && return
  $PY -m actbert ship "$1/full/last" "$D/sp/$2/actbert" --json
  $PY -m actbert ship "$1/no_regions/last" "$D/sp/$2/actbert_no_regions" --json
  $PY -m actbert evaluate --corpus "$D/sp/lib/corpus.jsonl" --checkpoint "$D/sp/$2/actbert" \
    --ablation-checkpoint "$D/sp/$2/actbert_no_regions" --dual-encoder "$D/sp/dual" --json \
    --split val --threads 2 > "$D/sp/$2_val.json.part" && mv "$D/sp/$2_val.json.part" "$D/sp/$2_val.json"
}
mkdir -p "$D/sp"
library 0 440 "$D/sk/corpus" "$D/sp/lib"
[ -f "$D/sp/dual/DONE" ] || { $PY -m actbert train-dual --corpus "$D/sp/lib/corpus.jsonl" \
  --out "$D/sp/dual" --steps 400 --threads 2 --json > "$D/sp/dual.log" && touch "$D/sp/dual/DONE"; }
extract f6b56b1 "$D/G1"
pair configs/demo_stage5.json "$D/sp/lib/corpus.jsonl" "$D/sp/s5" "$D/G1/actbert" "$D/G1/actbert_no_regions"
val "$D/sp/s5" SP5
[ "$WHAT" = sp ] || exit 0
library 1 1000 "$D/sk1/corpus" "$D/sp/lib1"
C=$D/sp/merged/corpus.jsonl
$PY lab/merge_corpora.py "$D/sp/lib/corpus.jsonl" "$D/sp/lib1/corpus.jsonl" "$C"
extract e0b0e07 "$D/ST2"
pair configs/demo_stage3.json "$C" "$D/sp/c3" "$D/ST2/actbert" "$D/ST2/actbert_no_regions"
pair configs/demo_stage4.json "$C" "$D/sp/c4" "$D/sp/c3/full/last" "$D/sp/c3/no_regions/last"
pair configs/demo_stage5.json "$D/sp/lib/corpus.jsonl" "$D/sp/c5" "$D/sp/c4/full/last" "$D/sp/c4/no_regions/last"
val "$D/sp/c5" SP
