# Two commands for a new user:
#   make run    set everything up, then start the explorer (builds the demo library on first launch)
#   make test   set everything up, then check the code (ruff) and run the whole test suite
#               (the browser test needs Debian's chromium: `make browser` installs it, as root)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup browser run demo demo-model test lint bench
setup: $(VENV)/.installed

# requirements.txt pins every extra of pyproject.toml (app, eval, scale, test; a test checks they
# agree); the project itself is installed editable, so scripts and `streamlit run` import this
# checkout without path hacks and the commands `actbert`, `indexer`, `actbert-explorer` exist.
$(VENV)/.installed: requirements.txt requirements-nodeps.txt pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -r requirements-nodeps.txt
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m indexer fetch-weights
	touch $@

# Debian's chromium for the browser test (Playwright drives it; no browser is downloaded). Only on
# request: `make test` runs the browser test where chromium exists and skips it, saying so,
# elsewhere; .ci/run calls this first, so CI runs it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "the browser test needs Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

run: setup
	$(PY) -m app

demo: setup
	$(PY) -m indexer demo

# The shipped demo model (assets/demo/actbert*, assets/README.md): SynthKitchen seed 0, 440 videos
# (308 train / 66 val / 66 test) ingested with the shipped detector; ActBERT mini and its no-region
# ablation pretrained in five stages with the recipes chosen on the val split (stages 1-2: what is
# in the kitchen, on seed 0's train split; 3-4: the steps of one recipe, on seed 0's train split
# plus every video of seed 1's 1,500-video draw; 5: stage 4's recipe again on seed 0's train split
# alone, lab/model_tries.md); shipped as float16 deltas
# over the packaged MiniLM; evaluated on seed 0's val (records the rerank and fusion policies) and
# test. Every stage resumes (seed 1 alone takes hours to generate and ingest on 2 cores).
DEMO_DATA ?= $(HOME)/.cache/actbert/demo-model
# The training recipes are files (configs/demo_stage1.json ... demo_stage4.json: what each is and
# why); DEMO_ARGS adds flags to every stage, which override the files (e.g. DEMO_ARGS="--steps 100").
DEMO_ARGS ?=
DEMO_EVAL = --corpus $(DEMO_DATA)/lib/corpus.jsonl --checkpoint assets/demo/actbert \
	--ablation-checkpoint assets/demo/actbert_no_regions --dual-encoder $(DEMO_DATA)/dual --json
# train both models side by side, pick a kept step on val, ship it:
# $(call demo_stage,RUNS,RECIPE,FLAGS OF THE NO-REGIONS RUN)
define demo_stage
	OMP_NUM_THREADS=1 $(PY) -m actbert train --config $(2) --library $(DEMO_DATA)/lib \
		--out $(DEMO_DATA)/$(1)/full $(DEMO_ARGS) & \
	OMP_NUM_THREADS=1 $(PY) -m actbert train --config $(2) --library $(DEMO_DATA)/lib \
		--out $(DEMO_DATA)/$(1)/no_regions --no-regions $(3) $(DEMO_ARGS) & wait
	$(PY) lab/select_step.py --corpus $(DEMO_DATA)/lib/corpus.jsonl --full $(DEMO_DATA)/$(1)/full \
		--no-regions $(DEMO_DATA)/$(1)/no_regions --out $(DEMO_DATA)/$(1)/select_step.json \
		--reuse $(DEMO_DATA)/$(1)/select_step.json
	step=$$($(PY) -c "import json; print(json.load(open('$(DEMO_DATA)/$(1)/select_step.json'))['best_step'])") && \
	$(PY) -m actbert ship $(DEMO_DATA)/$(1)/full/step-$$step assets/demo/actbert --json && \
	$(PY) -m actbert ship $(DEMO_DATA)/$(1)/no_regions/step-$$step assets/demo/actbert_no_regions --json
endef
# both models continued from their own earlier runs (no step to pick: the recipe's last):
# $(call demo_continue,RUNS,RECIPE,FULL INIT,NO-REGIONS INIT,CORPUS)
# (stages 3-4: the merged corpus, seed 0 as it is + seed 1 as train; stage 5: seed 0's own)
MERGED = $(DEMO_DATA)/merged/corpus.jsonl
define demo_continue
	OMP_NUM_THREADS=1 $(PY) -m actbert train --config $(2) --corpus $(5) \
		--out $(DEMO_DATA)/$(1)/full --init $(3) $(DEMO_ARGS) & \
	OMP_NUM_THREADS=1 $(PY) -m actbert train --config $(2) --corpus $(5) \
		--out $(DEMO_DATA)/$(1)/no_regions --no-regions --init $(4) $(DEMO_ARGS) & wait
endef
# keep a stage's records beside the shipped model: $(call demo_records,STAGE,RUNS)
define demo_records
	for m in full:actbert no_regions:actbert_no_regions; do for f in train.jsonl train_config.json loss_curve.png; do \
		cp $(DEMO_DATA)/$(2)/$${m%%:*}/$$f assets/demo/$${m##*:}/$${f%.*}_$(1).$${f##*.}; done; done
endef
demo-model: setup
	$(PY) -m indexer synthkitchen --out $(DEMO_DATA)/corpus --videos 440 --seed 0 --jobs 2
	$(PY) -m indexer ingest $(DEMO_DATA)/corpus/videos --library $(DEMO_DATA)/lib --preset fast \
		--detector assets/demo/detector.safetensors
	$(PY) -m indexer export-corpus $(DEMO_DATA)/lib
	$(call demo_stage,runs,configs/demo_stage1.json,)
	$(call demo_records,stage1,runs)
	$(call demo_stage,runs2,configs/demo_stage2.json,--init assets/demo/actbert_no_regions)
	$(call demo_records,stage2,runs2)
	$(PY) -m indexer synthkitchen --out $(DEMO_DATA)/corpus1 --videos 1500 --seed 1 --jobs 2
	$(PY) -m indexer ingest $(DEMO_DATA)/corpus1/videos --library $(DEMO_DATA)/lib1 --preset fast \
		--detector assets/demo/detector.safetensors
	$(PY) -m indexer export-corpus $(DEMO_DATA)/lib1
	$(PY) lab/merge_corpora.py $(DEMO_DATA)/lib/corpus.jsonl $(DEMO_DATA)/lib1/corpus.jsonl \
		$(DEMO_DATA)/merged/corpus.jsonl
	$(call demo_continue,runs3,configs/demo_stage3.json,assets/demo/actbert,assets/demo/actbert_no_regions,$(MERGED))
	$(call demo_continue,runs4,configs/demo_stage4.json,$(DEMO_DATA)/runs3/full/last,$(DEMO_DATA)/runs3/no_regions/last,$(MERGED))
	$(call demo_continue,runs5,configs/demo_stage5.json,$(DEMO_DATA)/runs4/full/last,$(DEMO_DATA)/runs4/no_regions/last,$(DEMO_DATA)/lib/corpus.jsonl)
	$(PY) -m actbert ship $(DEMO_DATA)/runs5/full/last assets/demo/actbert --json
	$(PY) -m actbert ship $(DEMO_DATA)/runs5/no_regions/last assets/demo/actbert_no_regions --json
	$(call demo_records,stage3,runs3)
	$(call demo_records,stage4,runs4)
	$(PY) -m actbert train-dual --corpus $(DEMO_DATA)/lib/corpus.jsonl --out $(DEMO_DATA)/dual --steps 400 \
		--threads 1 --json > $(DEMO_DATA)/dual.log
	$(PY) -m actbert evaluate $(DEMO_EVAL) --split val > $(DEMO_DATA)/eval_val.json
	$(PY) -m actbert evaluate $(DEMO_EVAL) --split test --plot assets/demo/plots \
		--report assets/demo/report > assets/demo/eval_test.json
	$(PY) docs/make_known_limits.py

# pytest exits 5 when it collects no test: make treats that as a failure, as it should.
# Two pytest-xdist workers, one test file each at a time (module fixtures are built once); the
# workers split the cores between them (tests/conftest.py). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: setup lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# Ruff with the configuration in pyproject.toml (about a second).
lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) bench/model.py
