# Two entry points (see README.md):
#   make demo   set everything up, then convert the bundled sample clip with the default model
#   make test   set everything up, then run the whole test suite
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.didtv-installed
# torch 2.14.1 and torchvision 0.29.1 (a CUDA build: the GPU path works where a GPU is; it runs
# on the CPU elsewhere) lie on disk on our machines; pip takes them from there (about a minute,
# 5.5 GB in the venv). Elsewhere they come from PyPI. torchvision is needed by piq (the 'eval'
# extra's metrics). The tests need every extra (pyproject.toml: train, eval, preview, ray, test;
# ray 2.60.0 installs from PyPI in about 15 s, 240 MB).
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test system venv clean

system:
	@missing=""; \
	command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing="$$missing ffmpeg"; \
	command -v mkvmerge >/dev/null && command -v mkvpropedit >/dev/null || missing="$$missing mkvtoolnix"; \
	command -v cc >/dev/null || command -v gcc >/dev/null || missing="$$missing gcc"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -c "import torch, torchvision" 2>/dev/null || $(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[test,train,eval,preview,ray]"
	touch $(STAMP)

venv: system $(STAMP)

demo: venv
	$(BIN)/didtv demo

test: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) build *.egg-info
