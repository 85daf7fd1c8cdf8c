SHELL := bash
.DEFAULT_GOAL := help

GO ?= go
BIN := $(CURDIR)/bin

.PHONY: help test
help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-28s %s\n", $$1, $$2}'

test: ## run every test (unit, moto, end-to-end)
	$(GO) vet ./...
	$(GO) test ./...
