# molpred developer entry points. `make demo` and `make test` are the README's Quick start.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

# Train a solubility model on bundled ESOL (scaffold split) and rank bundled candidates.
demo: $(STAMP)
	$(BIN)/molpred train data/esol.csv --smiles-column smiles \
		--target-columns "measured log solubility in mols per litre" \
		--split scaffold --output models/esol.pt --quiet
	$(BIN)/molpred predict models/esol.pt data/candidates.smi --output models/candidates_scored.csv \
		--top 15 --quiet

test: $(STAMP)
	$(BIN)/ruff check molpred tests benchmarks
	$(BIN)/pytest -q

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/featurize_speed.py --n 5000

clean:
	rm -rf $(VENV) models .pytest_cache
