# qubinode.airflow — the two commands a newcomer needs are `make up` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
HACK := hack
RUN := source $(HACK)/lib.sh &&

.PHONY: help bootstrap image up down test unit core-matrix provider sanity lint docs docs-lint release-notes molecule molecule-default molecule-distributed molecule-podman build bench bench-backbone bench-registration bench-dag-repo bench-temporal bench-airflow-side bench-runtime bench-day2 clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t24

bootstrap: ## Install podman, debootstrap and the controller tools, build the test-host image
	@$(HACK)/bootstrap.sh

image: ## Rebuild the test-host image
	@$(HACK)/build-testhost-image.sh --force

up: bootstrap ## Deploy the whole stack onto a local test host and print its URL
	@$(HACK)/up.sh

down: ## Remove the local test host of `make up`
	@$(HACK)/down.sh

test: bootstrap ## Everything CI runs: unit, provider, sanity, lint and docs-lint, then the molecule scenarios
	@$(HACK)/test.sh

TESTS ?= tests/unit
unit: ## Unit tests (one part: make unit TESTS="tests/unit/plugins/lookup -k manifest")
	@$(RUN) pytest -q $(TESTS)

core-matrix: ## Sanity and unit tests on the older ansible-core releases requires_ansible admits, each in its own venv
	@$(HACK)/core-matrix.sh

provider: ## Provider package tests (operators, webhook) inside real Airflow
	@$(HACK)/provider-tests.sh

sanity: ## ansible-test sanity on a clean copy of the collection
	@$(HACK)/sanity.sh

lint: ## ansible-lint with the production profile
	@$(RUN) ansible-lint --profile production -q

docs-lint: ## antsibull-docs lint of the guides and of the module, plugin and role docs; changelog fragments
	@$(RUN) cd "$$QA_CACHE/collections/ansible_collections/qubinode/airflow" && \
		antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs . && antsibull-changelog lint

release-notes: bootstrap ## Render the next release's notes from the changelog fragments (VERSION=1.0.0), releasing nothing
	@$(HACK)/release-notes.sh $(VERSION)

docs: bootstrap ## Build the documentation site (guides and generated reference) into .cache/docs
	@$(HACK)/docs.sh

molecule: ## All molecule scenarios, at the same time (logs in .cache/logs)
	@$(HACK)/molecule.sh

molecule-default: ## One host with the whole stack
	@$(HACK)/molecule.sh default

molecule-distributed: ## PostgreSQL and Airflow on separate hosts
	@$(HACK)/molecule.sh distributed

molecule-podman: ## One host switched from the native runtime to containers (podman-compose)
	@$(HACK)/molecule.sh podman

build: ## Build the collection tarball
	@$(RUN) ansible-galaxy collection build --force --output-path .cache/dist

bench: bench-backbone bench-registration bench-dag-repo bench-temporal bench-airflow-side bench-runtime bench-day2 ## Print every benchmark's figures

bench-backbone: bootstrap ## make up times, second converge time, idle RSS
	@$(HACK)/bench-backbone.sh

bench-registration: bootstrap ## 500 connections in one task vs a loop of `airflow connections add`
	@$(HACK)/bench-registration.sh

bench-dag-repo: bootstrap ## git push until the new DAG is served: pinned, tracking with/without refresh request
	@$(HACK)/bench-dag-repo.sh

bench-temporal: bootstrap ## Temporal vs LocalExecutor, Edge and Celery, 8 slots each: 100 no-op tasks, a chain of 20, CPU per task
	@$(HACK)/bench-temporal.sh

bench-airflow-side: bootstrap ## git push -> DAG served via the webhook, tracking and pinned (p50/p95); AnsibleRoleOperator overhead
	@$(HACK)/bench-airflow-side.sh

bench-runtime: bootstrap ## podman vs native: fresh converge time, switch time, idle RSS
	@$(HACK)/bench-runtime.sh

bench-day2: bootstrap ## Backup, restore (10,000 task instances) vs pg_dump/pg_restore by hand; upgrade and rollback downtime
	@$(HACK)/bench-day2.sh

clean: down ## Remove caches and the project virtualenv
	rm -rf .cache .venv .ansible tests/output
