# Punchcard. `make help` lists the targets.
GO        ?= go
BIN       ?= bin
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
BENCHCOUNT ?= 6

.PHONY: help build test unit lint bench fuzz run demo clean tools

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

build: ## build every binary into ./bin
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

test: lint unit ## lint, then every test with the race detector

unit: ## go test -race ./... (needs zbarimg and mosquitto; see .ci/run)
	$(GO) test -race -count=1 -timeout 30m ./...

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

tools: $(STATICCHECK) ## install the lint tools from the Go module proxy

lint: $(STATICCHECK) ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

bench: ## run every benchmark, BENCHCOUNT (6) times each, for medians with benchstat
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./...

FLEET_TILLS ?= 10000
.PHONY: bench-fleet
bench-fleet: build ## the fleet benchmark: FLEET_TILLS (10000) simulated tills against bin/hub; FLEET_RATE, FLEET_DURATION, FLEET_WARMUP, FLEET_FETCH (docs/operations.md)
	PUNCHCARD_FLEET_BENCH=1 FLEET_TILLS=$(FLEET_TILLS) FLEET_HUB_BIN=$(abspath $(BIN))/hub \
	  $(GO) test -run '^$$' -bench '^BenchmarkFleet$$' -benchtime 1x -count 1 -timeout 60m ./cmd/punchcard/internal/fleet/

fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

run: build ## start the hub with its embedded defaults
	$(BIN)/hub

demo: build ## run the end-to-end story with real processes (docs/demo.md); QR PNGs and logs in demo-out/
	$(BIN)/punchcard demo -bin $(BIN) -out demo-out

.PHONY: demo-mosquitto
demo-mosquitto: build ## the same story with Debian's Mosquitto as the broker (passwords, ACL; docs/demo.md)
	$(BIN)/punchcard demo -bin $(BIN) -out demo-out -broker mosquitto

.PHONY: chaos
chaos: ## the long fault-test suite: kills, partitions, broker restarts (needs mosquitto)
	$(GO) test -race -count=1 -timeout 60m -tags chaos -v ./cmd/punchcard/internal/chaos/

clean: ## remove build output
	rm -rf $(BIN)
