# Two commands for a new user:
#   make run    set everything up, then start the explorer (builds the demo library on first launch)
#   make test   set everything up, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup browser run demo demo-model test bench
setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-nodeps.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m indexer fetch-weights
	touch $@

# Debian's chromium for the browser test (Playwright drives it; no browser is downloaded).
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
# ablation pretrained in two stages with the recipe chosen on the val split; shipped as float16
# deltas over the packaged MiniLM; evaluated on val (records the rerank policy) and test. Every
# stage resumes.
DEMO_DATA ?= $(HOME)/.cache/actbert/demo-model
DEMO_STEPS ?= 2000
# Stage 1 recipe: the best measured on val of a 100-video draw (bench/matching.py: the only one whose
# matching head left chance, ROC-AUC 75); the step is picked on the 440-video draw's val split
# among the models kept every 250 steps (bench/select_step.py).
DEMO_RECIPE ?= --preset mini --clips-per-sample 2 --batch-size 16 --lr 1e-4 --warmup-steps 100 \
	--schedule cosine --match-on clean --match-input fused --match-weight 10 --hard-negatives 0 \
	--freeze-text-layers 4 --checkpoint-every 50 --keep-every 250 --seed 0
# Stage 2: both shipped stage-1 models trained 1,000 more steps at half the learning rate (a new
# cosine cycle, another data order); the val score rose at every scored step (assets/README.md).
DEMO_CONTINUE_STEPS ?= 1000
DEMO_CONTINUE ?= --clips-per-sample 2 --batch-size 16 --lr 5e-5 --warmup-steps 50 --schedule cosine \
	--match-on clean --match-weight 10 --hard-negatives 0 --freeze-text-layers 4 \
	--checkpoint-every 50 --keep-every 250 --seed 1
DEMO_EVAL = --corpus $(DEMO_DATA)/lib/corpus.jsonl --checkpoint assets/demo/actbert \
	--ablation-checkpoint assets/demo/actbert_no_regions --json
# train both models side by side, pick a kept step on val, ship it: $(call demo_stage,RUNS,ARGS)
# (an --init of assets/demo/actbert becomes assets/demo/actbert_no_regions for the ablation)
define demo_stage
	OMP_NUM_THREADS=1 $(PY) -m actbert train --library $(DEMO_DATA)/lib --out $(DEMO_DATA)/$(1)/full \
		$(2) & \
	OMP_NUM_THREADS=1 $(PY) -m actbert train --library $(DEMO_DATA)/lib --out $(DEMO_DATA)/$(1)/no_regions \
		--no-regions $(subst assets/demo/actbert,assets/demo/actbert_no_regions,$(2)) & wait
	$(PY) bench/select_step.py --corpus $(DEMO_DATA)/lib/corpus.jsonl --full $(DEMO_DATA)/$(1)/full \
		--no-regions $(DEMO_DATA)/$(1)/no_regions --out $(DEMO_DATA)/$(1)/select_step.json \
		--reuse $(DEMO_DATA)/$(1)/select_step.json
	step=$$($(PY) -c "import json; print(json.load(open('$(DEMO_DATA)/$(1)/select_step.json'))['best_step'])") && \
	$(PY) -m actbert ship $(DEMO_DATA)/$(1)/full/step-$$step assets/demo/actbert --json && \
	$(PY) -m actbert ship $(DEMO_DATA)/$(1)/no_regions/step-$$step assets/demo/actbert_no_regions --json
endef
demo-model: setup
	$(PY) -m indexer synthkitchen --out $(DEMO_DATA)/corpus --videos 440 --seed 0 --jobs 2
	$(PY) -m indexer ingest $(DEMO_DATA)/corpus/videos --library $(DEMO_DATA)/lib --preset fast \
		--detector assets/demo/detector.safetensors
	$(PY) -m indexer export-corpus $(DEMO_DATA)/lib
	$(call demo_stage,runs,--steps $(DEMO_STEPS) $(DEMO_RECIPE))
	for m in actbert actbert_no_regions; do for f in train.jsonl train_config.json loss_curve.png; do \
		cp assets/demo/$$m/$$f assets/demo/$$m/$${f%.*}_stage1.$${f##*.}; done; done
	$(call demo_stage,runs2,--init assets/demo/actbert --steps $(DEMO_CONTINUE_STEPS) $(DEMO_CONTINUE))
	$(PY) -m actbert evaluate $(DEMO_EVAL) --split val > $(DEMO_DATA)/eval_val.json
	$(PY) -m actbert evaluate $(DEMO_EVAL) --split test --plot assets/demo/plots \
		--report assets/demo/report > assets/demo/eval_test.json

# pytest exits 5 when it collects no test: make treats that as a failure, as it should.
# Two pytest-xdist workers, one test file each at a time (module fixtures are built once); the
# workers split the cores between them (tests/conftest.py). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: setup browser
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

bench: setup
	$(PY) bench/model.py
