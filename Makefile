SHELL := bash
.DEFAULT_GOAL := help
.SHELLFLAGS := -eu -o pipefail -c

GO ?= go
BUILD := $(CURDIR)/build

# Pinned Go tools (the Lambda Runtime Interface Emulator, staticcheck): their
# versions live in tools/go.mod, checked by tools/go.sum; go tool builds and caches them.
TOOL := $(GO) tool -modfile=$(CURDIR)/tools/go.mod

# The Lambda build: provided.al2023 on arm64, no legacy RPC mode, no symbols.
LAMBDA_TAGS := lambda.norpc
LAMBDA_LDFLAGS := -s -w
LAMBDA_BUILD := CGO_ENABLED=0 $(GO) build -tags $(LAMBDA_TAGS) -trimpath -ldflags='$(LAMBDA_LDFLAGS)'

EVENT ?= events/direct.json
TARGET ?= api
JOB ?= 2500
LATENCY ?= off
FUZZTIME ?= 30s

.PHONY: help build build-ApiFunction build-QueueFunction test lint demo invoke stack bench fuzz deploy clean

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-28s %s\n", $$1, $$2}'

build: ## build the bootstrap for linux/arm64 (build/arm64) and for this machine (build/host)
	GOOS=linux GOARCH=arm64 $(LAMBDA_BUILD) -o $(BUILD)/arm64/bootstrap ./functions/deleteconv
	$(LAMBDA_BUILD) -o $(BUILD)/host/bootstrap ./functions/deleteconv
	@ls -l $(BUILD)/arm64/bootstrap $(BUILD)/host/bootstrap

# sam build runs `make build-<LogicalId>` (BuildMethod: makefile) with ARTIFACTS_DIR set, once per function; both
# functions are the same arm64 bootstrap.
.PHONY: build-ApiFunction build-QueueFunction sam-bootstrap
build-ApiFunction: sam-bootstrap ## SAM's entry point for ApiFunction (writes $(ARTIFACTS_DIR)/bootstrap)
build-QueueFunction: sam-bootstrap ## SAM's entry point for QueueFunction (the same bootstrap)
sam-bootstrap:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (sam build sets it)"; exit 2; }
	GOOS=linux GOARCH=arm64 $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/deleteconv

test: ## go vet, then every test: unit, moto, template checks, end-to-end through the Lambda emulator (= go test -timeout 30m ./...)
	$(GO) vet ./...
	$(GO) test -timeout 30m ./...

lint: ## go vet, staticcheck, cfn-lint
	$(GO) vet ./...
	$(TOOL) staticcheck ./...
	cfn-lint template.yaml

# cmd/devstack runs with the flags devstack uses to build the bootstrap and the ZIM server for this machine
# (cgo off, -trimpath), so that the packages they share (the AWS SDK) compile once on a fresh clone.
DEVSTACK := CGO_ENABLED=0 $(GO) run -trimpath ./cmd/devstack
# The pinned emulator builds (about a minute on a fresh clone) while go run compiles cmd/devstack: under the lock file
# devstack's own build of it takes, so devstack waits for it and finds it cached instead of compiling it twice.
RIE_PREBUILD := mkdir -p $(BUILD) && if command -v flock >/dev/null; then \
  flock $(BUILD)/.tools.lock env GOWORK=off $(TOOL) -n aws-lambda-rie >/dev/null 2>&1 & fi

demo: ## every sample event through the real bootstrap under the Lambda emulator, then a job of JOB=2500 conversations through the local queue (LATENCY=default: HTTPS and ZEGO's round trips)
	@$(RIE_PREBUILD); rc=0; $(DEVSTACK) demo -job $(JOB) -latency $(LATENCY) || rc=$$?; wait; exit $$rc

invoke: ## invoke one event (EVENT=events/direct.json by default) on TARGET=api, or send it to TARGET=queue; ZEGO_TARGET=aws for real AWS/ZEGO
	@$(RIE_PREBUILD); rc=0; $(DEVSTACK) invoke -event $(EVENT) -target $(TARGET) -latency $(LATENCY) || rc=$$?; wait; exit $$rc

stack: ## start the local stack, print its endpoints and an env-vars file for sam local, run until Ctrl-C (LATENCY=default: HTTPS and ZEGO's round trips)
	@$(RIE_PREBUILD); rc=0; $(DEVSTACK) stack -latency $(LATENCY) || rc=$$?; wait; exit $$rc

bench: ## Go benchmarks and the local-stack performance measurements, on loopback and with the latency profile
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./cmd/perfbench

fuzz: ## run every fuzz target for FUZZTIME each (default 30s); seeds also run in make test
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

deploy: ## sam build && sam deploy (needs the SAM CLI and AWS credentials)
	sam build
	sam deploy

clean: ## remove build outputs
	rm -rf $(BUILD) .aws-sam
