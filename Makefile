# One entry point for developers and CI. `make test` runs every gate from nothing on a
# fresh Debian 12 machine (root): apt packages, the virtualenv, the bench images, lint,
# sanity, unit and integration tests, every molecule scenario.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

REPO := $(CURDIR)
VENV := $(REPO)/.venv
BIN := $(VENV)/bin
PYTHON ?= python3
export PATH := $(BIN):$(PATH)
export CONTAINERS_CONF := $(REPO)/tests/bench/containers.conf
export ANSIBLE_COLLECTIONS_PATH := $(REPO)/.build/collections
export ANSIBLE_NOCOLOR := 1
export PY_COLORS := 0
export ANSIBLE_FORCE_COLOR := 0

APT_PACKAGES := podman debootstrap runc rsync git git-lfs curl findutils util-linux dpkg-dev gpg gpg-agent \
	python3-venv python3-pip ca-certificates
SCENARIOS := $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))
COLLECTION_LINK := $(REPO)/.build/collections/ansible_collections/hpcllm/webui

.PHONY: help setup apt venv link images lint yamllint ansible-lint sanity units \
	integration molecule test gates build bench demo demo-clean clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: apt venv link ## install apt packages and the pinned .venv

apt: ## apt packages the tests need (podman, debootstrap, runc, ...)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q '^install ok installed' || echo $$p; done); \
	if [[ -n "$$missing" ]]; then \
		echo "==> apt-get install $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(BIN)/.installed: requirements-dev.txt | apt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed ## the pinned tool chain in .venv

link: ## lay the checkout at .build/collections/ansible_collections/hpcllm/webui
	@mkdir -p $(dir $(COLLECTION_LINK))
	@[[ -L $(COLLECTION_LINK) ]] || ln -sfn $(REPO) $(COLLECTION_LINK)

# needs the apt packages only (Debian's python3 and pip): `make test` builds it next to the .venv
images: apt ## build the bench container images (only when their recipe changed)
	tests/bench/build-images.sh

lint: yamllint ansible-lint ## yamllint and ansible-lint (production profile)

yamllint: venv
	$(BIN)/yamllint --strict .
	@echo "yamllint: passed (strict)"

ansible-lint: venv link
	$(BIN)/ansible-lint --profile production --strict

sanity: venv ## ansible-test sanity on a copy laid at ansible_collections/hpcllm/webui (community.general, which the modules import, beside it)
	@pipv=$$(grep -oP "pip='\K[0-9.]+" $(VENV)/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -1); \
	cache=$$HOME/.ansible/test/cache/get_pip_$${pipv//./_}.py; mkdir -p $$(dirname $$cache); \
	install -m 0644 tests/sanity/get-pip-offline.py $$cache; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	dest=$$tmp/ansible_collections/hpcllm/webui; mkdir -p $$dest $$tmp/ansible_collections/community; \
	git ls-files -co --exclude-standard | rsync -a --files-from=- ./ $$dest/; \
	ln -s $$(ls -d $(VENV)/lib/python3*/site-packages/ansible_collections/community/general) \
		$$tmp/ansible_collections/community/general; \
	cd $$dest && $(BIN)/ansible-test sanity --venv --python 3.11 --color no; \
	echo "ansible-test sanity: passed (no ignore file)"

units: venv link ## unit tests (pytest)
	$(BIN)/pytest -q -p no:cacheprovider --durations=5 tests/unit

# two workers, whole files each (--dist loadfile): most of the time is podman and apt waiting
integration: venv link images ## module integration tests through ansible-playbook (pytest, two workers)
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=12 tests/integration

molecule: $(addprefix molecule-,$(SCENARIOS)) ## every molecule scenario

# profile_tasks: a time stamp and duration after each task of a scenario's own plays, so a
# log shows where a scenario's time goes
molecule-%: images venv link ## one molecule scenario (e.g. make molecule-site)
	@echo "==> molecule test -s $*"
	ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks $(BIN)/molecule test -s $*

GALAXY_VENV := .build/galaxy-importer
$(GALAXY_VENV)/.installed: tests/galaxy/requirements.txt
	python3 -m venv $(GALAXY_VENV)
	$(GALAXY_VENV)/bin/pip install --quiet -r tests/galaxy/requirements.txt
	touch $@

# galaxy-importer: Galaxy's own checks of the tarball (a README in every role, ansible-doc of
# every plugin and role, ansible-lint), as an upload to Galaxy would run them
build: venv link $(GALAXY_VENV)/.installed ## build the collection tarball, install it offline, list its modules, run galaxy-importer on it
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BIN)/ansible-galaxy collection build --force --output-path $$tmp . ; \
	ANSIBLE_COLLECTIONS_PATH=$$tmp/installed $(BIN)/ansible-galaxy collection install --offline --force \
		-p $$tmp/installed $$tmp/hpcllm-webui-*.tar.gz; \
	ANSIBLE_COLLECTIONS_PATH=$$tmp/installed $(BIN)/ansible-doc -l hpcllm.webui; \
	ANSIBLE_COLLECTIONS_PATH=$$tmp/installed $(BIN)/ansible-doc -t role -l hpcllm.webui; \
	cd $$tmp && PATH=$(CURDIR)/$(GALAXY_VENV)/bin:$$PATH $(CURDIR)/$(GALAXY_VENV)/bin/python -m galaxy_importer.main \
		hpcllm-webui-*.tar.gz > galaxy-importer.log 2>&1 || { cat galaxy-importer.log; echo "galaxy-importer: FAILED"; exit 1; }; \
	grep -E "^(WARNING|ERROR)" galaxy-importer.log || true; tail -1 galaxy-importer.log; echo "galaxy-importer: passed"

# `make test` runs every gate from one pool of two job slots (2 cores, which the gates keep
# busy: only less work shortens the run, and a free slot is taken by the next gate at once).
# The gates start longest first (the `site` scenario first, then the other scenarios and
# the integration tests), so the short ones fill the end; `python_build` comes after the
# site's first run has put CPython's objects in the shared compiler cache. Each gate prints
# its output in one piece when it ends (--output-sync), followed by the time it took. The
# .venv and the bench images are made side by side first, before any gate: make starts a
# gate whose prerequisites are ready ahead of one waiting for them, so gates that need no
# image would otherwise take both slots before the long ones.
POOL_ORDER := molecule-site integration molecule-webui molecule-realui molecule-master molecule-models molecule-python_build \
	molecule-el_packages sanity molecule-cuda_relocate lint units build
POOL := $(POOL_ORDER) $(filter-out $(POOL_ORDER),$(addprefix molecule-,$(SCENARIOS)))
GATES := $(filter-out molecule-site,$(POOL))

test: apt ## every gate: lint, sanity, units, integration, build, molecule (two slots)
	@start=$$(date +%s); export HPCLLM_TEST_T0=$$start; \
	$(MAKE) --no-print-directory -j2 --output-sync=target venv link images; \
	echo "==> .venv and bench images ready after $$(( $$(date +%s) - start )) s"; \
	$(MAKE) --no-print-directory -j2 --output-sync=target $(addprefix timed-,$(POOL)); \
	echo "==> all gates passed in $$(( $$(date +%s) - start )) s (after apt)"

gates: venv link ## every gate but the site scenario, one after another
	@for gate in $(GATES); do $(MAKE) --no-print-directory timed-$$gate; done

# the start offset (from `make test`'s start) shows how the two slots were filled
timed-%:
	@start=$$(date +%s); $(MAKE) --no-print-directory $*; \
	echo "==> $* took $$(( $$(date +%s) - start )) s$${HPCLLM_TEST_T0:+ (started at +$$(( start - HPCLLM_TEST_T0 )) s)}"

bench: setup ## benchmarks (ratios measured side by side in one run)
	@set -e; for b in bench/bench_*.py; do \
		[[ -e $$b ]] || continue; echo "==> $$b"; $(BIN)/python $$b; done

demo: images venv link ## the whole deployment: site.yml inside a bench master against local mirrors
	@echo "==> Bringing up the demo master ($${HPCLLM_BENCH_PREFIX:-hpcllm}-site), its mirrors, and running site.yml in it"
	$(BIN)/molecule converge -s site
	@podman exec -i -e WWCTL_DOUBLE_STATE=/var/lib/warewulf -e WWCTL_DOUBLE_VERSION=4.5.8 $${HPCLLM_BENCH_PREFIX:-hpcllm}-site bash -s < tests/bench/demo-summary.sh
	@echo "==> The demo master keeps running; remove it with: make demo-clean"

demo-clean: ## remove the demo master
	$(BIN)/molecule destroy -s site
	podman rmi --ignore localhost/$${HPCLLM_BENCH_PREFIX:-hpcllm}-site-offline-base:latest >/dev/null

clean: ## remove the virtualenv, build folders and caches (not the podman images)
	rm -rf .venv .build .cache tests/output .pytest_cache
