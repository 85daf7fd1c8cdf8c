SHELL := bash
.DEFAULT_GOAL := help
.SHELLFLAGS := -eu -o pipefail -c

GO ?= go
BIN := $(CURDIR)/bin
BUILD := $(CURDIR)/build

# Pinned tools, installed into ./bin (ignored by git).
RIE_MODULE := github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
STATICCHECK_VERSION := v0.8.2

# The Lambda build: provided.al2023 on arm64, no legacy RPC mode, no symbols.
LAMBDA_TAGS := lambda.norpc
LAMBDA_LDFLAGS := -s -w
LAMBDA_BUILD := CGO_ENABLED=0 $(GO) build -tags $(LAMBDA_TAGS) -trimpath -ldflags='$(LAMBDA_LDFLAGS)'

EVENT ?= events/direct.json
FUZZTIME ?= 30s

.PHONY: help build build-DeleteConvFunction tools check-python check-moto test lint demo invoke bench fuzz deploy clean

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

tools: $(BIN)/aws-lambda-rie $(BIN)/staticcheck ## install the pinned Go tools into ./bin

$(BIN)/aws-lambda-rie:
	GOBIN=$(BIN) $(GO) install $(RIE_MODULE)@$(RIE_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

check-python: ## the image's Python tools the tests need (they cannot be installed from elsewhere)
	@missing=""; for t in moto_server cfn-lint python3; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	python3 -c 'import samtranslator, boto3' 2>/dev/null || missing="$$missing python3:samtranslator/boto3"; \
	if [ -n "$$missing" ]; then echo "missing:$$missing (they ship in the machine image's Python; see README 'Requirements')"; exit 1; fi

check-moto:
	@command -v moto_server >/dev/null || { echo "missing: moto_server (pip install 'moto[server]'; see README 'Requirements')"; exit 1; }

test: tools check-python ## run every test: unit, Secrets Manager via moto, template checks, end-to-end via the emulator
	$(GO) vet ./...
	PATH="$(BIN):$$PATH" $(GO) test -count=1 ./...

lint: tools check-python ## go vet, staticcheck, cfn-lint
	$(GO) vet ./...
	$(BIN)/staticcheck ./...
	cfn-lint template.yaml

demo: tools check-moto ## run every sample event through the real bootstrap under the Lambda emulator, locally
	PATH="$(BIN):$$PATH" $(GO) run ./cmd/devstack demo

invoke: tools ## invoke one event (EVENT=events/sqs.json), print the raw response; ZEGO_TARGET=aws for real AWS/ZEGO
	PATH="$(BIN):$$PATH" $(GO) run ./cmd/devstack invoke -event $(EVENT)

bench: tools check-python ## Go benchmarks and the local-stack performance measurements
	$(GO) test -run '^$$' -bench . -benchmem ./...
	PATH="$(BIN):$$PATH" $(GO) run ./cmd/perfbench

fuzz: ## run every fuzz target for FUZZTIME each (default 30s); seeds also run in make test
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

deploy: ## sam build && sam deploy (needs the SAM CLI and AWS credentials)
	sam build
	sam deploy

clean: ## remove build outputs and local tools
	rm -rf $(BUILD) $(BIN) .aws-sam
