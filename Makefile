# Deferred: the two commands are `make dev` (the whole system locally) and `make test` (all tests).
# Everything they need is installed by the scripts they call (project-local Python venvs and Node
# packages in .venv/).

SHELL := /bin/bash
CARGO ?= cargo
PORT ?= 3000

.PHONY: help dev test reliability soak smoke lint fmt clippy machete lint-template bench bench-profiles profile fuzz lambda-build lambda-check moto-up moto-down clean-local

## make help: this list.
help:
	@grep -E '^## make ' $(MAKEFILE_LIST) | sed -e 's/^## //'

## make dev: the emulator, the local runner (HTTP API on 127.0.0.1:$(PORT)), demo data.
dev:
	@scripts/dev.sh

## make test: every test (unit, handler tests against moto, end to end through the runner).
test:
	@scripts/venv.sh moto
	$(CARGO) build --workspace --bins
	@scripts/moto.sh run $(CARGO) test --workspace --all-targets --no-fail-fast

## make reliability: the incident, reproduced at scale (docs/RELIABILITY.md): 500 new subjects
## requested at once, without MaximumConcurrency and as shipped; prints both. Not in CI (minutes).
reliability:
	@scripts/venv.sh moto
	@scripts/moto.sh run $(CARGO) test -p e2e-tests --test incident -- --ignored --nocapture

## make soak: load and soak of the local system over loopback with wrk (installed by apt-get when
## missing): p50/p99 per route, runner RSS before/after; fails only on a wrong status, a socket
## error or RSS growth beyond a generous bound, never on speed. Not in CI (minutes).
soak:
	@scripts/soak.sh

## make smoke API_URL=https://<api-id>.execute-api.<region>.amazonaws.com: the smoke test of a
## deployed stack, through its HTTP API, signed (SigV4) with your AWS credentials. SMOKE_ARGS passes
## more options, e.g. SMOKE_ARGS='--unsigned' for ApiAuth=NONE, '--timeout-seconds 300'.
smoke:
	@if [ -z "$(API_URL)" ]; then \
	  echo "make smoke: API_URL is missing. Pass the stack's ApiUrl output:" >&2; \
	  echo "  make smoke API_URL=\$$(aws cloudformation describe-stacks --stack-name <stack> \\" >&2; \
	  echo "    --query \"Stacks[0].Outputs[?OutputKey=='ApiUrl'].OutputValue\" --output text)" >&2; \
	  exit 2; \
	fi
	$(CARGO) run -p deferred-smoke -- --api-url "$(API_URL)" $(SMOKE_ARGS)

## make lint: formatting, clippy, unused dependencies (cargo-machete), and the SAM template
## (sam validate --lint, sam validate, cfn-lint, the checkov security scan).
lint: fmt clippy machete lint-template

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## make machete: fails on a dependency no code uses (cargo-machete, pinned and installed into
## .venv/cargo by the script), or a [workspace.dependencies] entry no crate takes.
machete:
	@scripts/machete.sh

lint-template:
	@scripts/lint-template.sh

## make bench: the release binaries measured (cold start and memory next to a hello-world floor,
## CPU per request, compute's parser step by step, binary sizes); writes the figures and their
## targets into docs/BENCHMARKS.md. Not in CI (about 10 minutes after the release build).
## Criterion's micro-benchmarks of compute: cargo bench -p compute.
bench:
	@scripts/bench.sh

## make bench-profiles: the release profile's trade-offs (LTO thin/off, panic=abort, opt-level
## "s"), each a full release build, measured side by side: size, init, RSS, CPU, throughput.
## VARIANTS="lto-thin panic-abort" for some of them. Not in CI (an hour on 2 cores).
bench-profiles:
	@scripts/profile-variants.sh

## make profile: where a warm binary's CPU goes (perf, on the release build with symbols);
## BINARY=request-api (default) PATH_NAME=done (default; "pending", "new subject", ...).
profile:
	@scripts/profile.sh

## make fuzz: every fuzz target of fuzz/ for FUZZ_SECONDS (default 20) each, from a seed corpus of
## the events/ payloads and test datasets (cargo-fuzz, pinned and installed into .venv/cargo by
## the script). FUZZ_TARGETS="dataset s3_event" runs some of them. See docs/RELIABILITY.md.
fuzz:
	@scripts/fuzz.sh

## make lambda-check: build the real Lambda binaries and feed each its events/ payloads through
## the Lambda Runtime API (cargo lambda watch + cargo lambda invoke).
lambda-check:
	@scripts/lambda-check.sh

## make lambda-build: release binaries for Lambda (arm64, as in template.yaml).
lambda-build:
	@scripts/venv.sh tools
	PATH="$(CURDIR)/.venv/tools/bin:$$PATH" $(CARGO) lambda build --release --arm64

moto-up:
	@scripts/moto.sh start && scripts/moto.sh env

moto-down:
	@scripts/moto.sh stop

clean-local:
	rm -rf .local .venv
