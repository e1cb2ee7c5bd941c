# molpred developer entry points. `make app` and `make test` are the README's Quick start.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: app demo test check format bench-quick screenshot clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

# The screening page with the bundled models, on http://127.0.0.1:8501 (Ctrl-C to stop).
app: $(STAMP)
	$(BIN)/streamlit run app.py --server.headless true --server.address 127.0.0.1

# Train a solubility model on bundled ESOL (scaffold split) and rank bundled candidates.
demo: $(STAMP)
	$(BIN)/molpred train data/esol.csv --smiles-column smiles \
		--target-columns "measured log solubility in mols per litre" \
		--split scaffold --output models/esol.pt --quiet
	$(BIN)/molpred predict models/esol.pt data/candidates.smi --output models/candidates_scored.csv \
		--top 15 --quiet

# Everything: real browser, PostgreSQL, Ray, kill -9 resume, the chemprop quick benchmark (CI runs this).
test: $(STAMP)
	$(BIN)/ruff check molpred tests benchmarks app.py
	$(BIN)/ruff format --check molpred tests benchmarks app.py
	$(BIN)/pytest -q

# The edit-test loop: every test not marked slow (under 3 minutes on 2 cores).
check: $(STAMP)
	$(BIN)/ruff check molpred tests benchmarks app.py
	$(BIN)/pytest -q -m "not slow"

format: $(STAMP)
	$(BIN)/ruff format molpred tests benchmarks app.py
	$(BIN)/ruff check --fix molpred tests benchmarks app.py

# README's screenshot, taken by the real-browser test (needs /usr/bin/chromium).
screenshot: $(STAMP)
	MOLPRED_SCREENSHOT=docs/app.png $(BIN)/pytest -q tests/test_browser.py -k paste

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/featurize_speed.py --n 5000

clean:
	rm -rf $(VENV) models .pytest_cache
