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

test: lint unit cross test-32 ## lint, every test with the race detector, the agent for every till platform, 32-bit tests

unit: ## go test -race ./... (needs zbarimg and mosquitto; see .ci/run)
	$(GO) test -race -count=1 -timeout 30m ./...

# The till platforms the agent is built for (GOOS/GOARCH): money and counters
# never depend on the size of int, so 32-bit tills run it too.
AGENT_PLATFORMS ?= linux/amd64 linux/arm64 linux/arm linux/386 windows/amd64 windows/386

.PHONY: cross test-32
cross: ## build the agent for every till platform (AGENT_PLATFORMS) into $(BIN)/cross
	@for p in $(AGENT_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=""; [ "$$os" = windows ] && ext=.exe; \
	  echo "agent $$os/$$arch"; \
	  GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) build -o $(BIN)/cross/agent-$$os-$$arch$$ext ./cmd/agent || exit 1; \
	done

test-32: ## the protocol and till-database tests on a 32-bit platform (GOARCH=386)
	GOARCH=386 CGO_ENABLED=0 $(GO) test -count=1 ./protocol/... ./store/agentdb/...

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

.PHONY: bench-online
BENCH_ONLINE_ROWS ?= 0,100000,1000000
BENCH_ONLINE_TIME ?= 1000x
bench-online: ## online redeem at 1/16/64 clients over HTTP, ledger pre-filled to BENCH_ONLINE_ROWS, with same-run baselines
	PUNCHCARD_BENCH_ROWS=$(BENCH_ONLINE_ROWS) $(GO) test -run '^$$' -bench 'BenchmarkOnlineRedeem' -benchtime $(BENCH_ONLINE_TIME) -count $(BENCHCOUNT) -timeout 60m ./hub/

.PHONY: bench-online-commit
BENCH_ONLINE_ROUNDS ?= 5
bench-online-commit: ## online redeem at 16 clients: the writer's commit serial (fsync in the commit), pipelined (the syncer fsyncs while the writer goes on) and without fsync, alternated in BENCH_ONLINE_ROUNDS rounds on a ledger of the first of BENCH_ONLINE_ROWS rows
	PUNCHCARD_BENCH_ROWS=$(BENCH_ONLINE_ROWS) PUNCHCARD_BENCH_ROUNDS=$(BENCH_ONLINE_ROUNDS) $(GO) test -run '^$$' -bench 'BenchmarkOnlineRedeemCommit' -benchtime $(BENCH_ONLINE_TIME) -count 1 -timeout 60m ./hub/

.PHONY: bench-onlinefirst
bench-onlinefirst: ## till decisions against the real hub on loopback: the loopback round trip itself, a multi-use code's validate and redeem online (local), a single-use redeem online first vs offline
	$(GO) test -run '^$$' -bench 'BenchmarkTillOnline' -benchtime 2000x -count $(BENCHCOUNT) -timeout 60m ./cmd/agent/

.PHONY: bench-lots
LOTS_EXPIRY_N ?= 1000000
bench-lots: ## points lots: a burn from a customer with 1,000 lots vs 1 lot, and the expiry of LOTS_EXPIRY_N (1M) lots vs a plain indexed UPDATE of them (same-run baselines)
	$(GO) test -run '^$$' -bench 'BenchmarkLotsBurn' -benchmem -benchtime 2000x -count $(BENCHCOUNT) ./store/ledger/
	LOTS_EXPIRY_N=$(LOTS_EXPIRY_N) $(GO) test -run '^$$' -bench 'BenchmarkLotsExpiry' -benchtime 1x -count $(BENCHCOUNT) -timeout 60m ./store/ledger/

.PHONY: bench-balances
BENCH_LIABILITY_HISTORY ?= 1000000
BENCH_POINTS_CUSTOMERS ?= 100000
bench-balances: ## the balances report: the gift card liability read from 200 sold cards vs summed over a journal of BENCH_LIABILITY_HISTORY (1M) rows, and the points outstanding from the tenant's total vs summed over BENCH_POINTS_CUSTOMERS (100,000) customers' rows (same run)
	PUNCHCARD_BENCH_HISTORY=$(BENCH_LIABILITY_HISTORY) $(GO) test -run '^$$' -bench 'BenchmarkGiftCardLiability' -benchtime 10x -count $(BENCHCOUNT) -timeout 30m ./store/ledger/
	PUNCHCARD_BENCH_CUSTOMERS=$(BENCH_POINTS_CUSTOMERS) $(GO) test -run '^$$' -bench 'BenchmarkPointsOutstanding' -benchtime 10x -count $(BENCHCOUNT) -timeout 30m ./store/ledger/

.PHONY: bench-rows
bench-rows: ## the ledger's write path: fleet-shaped ingest drains (CPU and WAL pages per message) and online baskets in group commits (CPU per basket)
	$(GO) test -run '^$$' -bench 'BenchmarkRows' -benchtime 5600x -count $(BENCHCOUNT) ./store/ledger/

.PHONY: bench-segments
bench-segments: ## segments from behaviour: ingest of sales with the on-fact recomputation vs without definitions, and one decision's history reads for 10 / 365 (1 y) / 3,650 (10 y) orders (same-run baselines)
	$(GO) test -run '^$$' -bench 'BenchmarkSegment' -benchtime 2000x -count $(BENCHCOUNT) ./store/ledger/

.PHONY: bench-metrics
bench-metrics: ## one Prometheus scrape of /metrics at 10,000 tills, 20 tenants, 200 budget campaigns vs the hand-written exposition it replaced (same run)
	$(GO) test -run '^$$' -bench 'BenchmarkScrape' -benchmem -benchtime 50x -count $(BENCHCOUNT) -timeout 30m ./hub/

.PHONY: bench-distribution
BENCH_DIST ?= 100000
bench-distribution: ## distribution exports: CSV and ZIP of QR PNGs of BENCH_DIST (100,000) codes vs 10,000 (same run): rows/s, peak live heap (flat memory), and the making of the codes
	PUNCHCARD_BENCH_DIST=$(BENCH_DIST) $(GO) test -run '^$$' -bench 'BenchmarkDistributionExport' -benchmem -benchtime 1x -count $(BENCHCOUNT) -timeout 60m ./hub/

.PHONY: bench-support
bench-support: ## support desk: the history index's write cost (same batches with and without it) and a history page vs the export's read (same run)
	$(GO) test -run '^$$' -bench 'BenchmarkHistoryIndexApply' -benchtime 10000x -count $(BENCHCOUNT) -timeout 60m ./store/ledger/
	$(GO) test -run '^$$' -bench 'BenchmarkCustomerActivity' -benchtime 30x -count $(BENCHCOUNT) -timeout 60m ./store/ledger/

.PHONY: bench-reports
REPORTS_N ?= 1000000
REPORTS_CACHE ?= /tmp/punchcard-bench-reports
bench-reports: ## reports on one ledger of REPORTS_N (1M) facts over a year, seeded once: a month's campaign report vs a plain COUNT of the month's facts, the whole ledger's CSV export over HTTP (rows/s, peak heap) vs a plain SELECT of the rows (medians of BENCHCOUNT alternated calls), the covering index's write cost, and the distribution report over 100k distributed codes vs the catalog's COUNT of them (same-run baselines)
	REPORTS_N=$(REPORTS_N) REPORTS_CACHE=$(REPORTS_CACHE) $(GO) test -run '^$$' -bench 'BenchmarkReports$$' -benchtime $(BENCHCOUNT)x -count 1 -timeout 90m ./hub/api/
	$(GO) test -run '^$$' -bench 'BenchmarkReportIndexApply' -benchtime 10000x -count $(BENCHCOUNT) ./store/ledger/
	$(GO) test -run '^$$' -bench 'BenchmarkReportDistribution$$' -benchtime 5x -count $(BENCHCOUNT) ./hub/api/

.PHONY: bench-tiers
TIER_REVIEW_N ?= 10000
bench-tiers: ## tiers: an earn for a customer with 1,000 lots with a tier programme (points, spend) vs none, and the review of TIER_REVIEW_N (10,000) due tiers vs a plain indexed UPDATE (same-run baselines)
	$(GO) test -run '^$$' -bench 'BenchmarkTierEarn' -benchtime 300x -count $(BENCHCOUNT) ./store/catalog/
	TIER_REVIEW_N=$(TIER_REVIEW_N) $(GO) test -run '^$$' -bench 'BenchmarkTierReview' -benchtime 1x -count $(BENCHCOUNT) -timeout 60m ./store/catalog/

.PHONY: bench-referrals
bench-referrals: ## referrals: an online redeem over HTTP with a referral code (guard + referrer's reward) vs the same redeem of a plain code, alternated; the decision step alone
	$(GO) test -run '^$$' -bench 'BenchmarkRedeemReferral' -benchtime 300x -count $(BENCHCOUNT) ./hub/api/
	$(GO) test -run '^$$' -bench 'BenchmarkDecideReferral' -benchmem -count $(BENCHCOUNT) ./protocol/decide/

.PHONY: bench-events
bench-events: ## events and webhooks: event-to-webhook latency p50/p99 with a healthy receiver (its round trip and River's fetch unwoken as baselines); the webhook service's idle CPU; ingest and online redeem with the event log vs without (interleaved, same run)
	$(GO) test -run '^$$' -bench 'BenchmarkEventToWebhook' -benchtime 500x -count $(BENCHCOUNT) ./hub/webhooks/
	$(GO) test -run '^$$' -bench 'BenchmarkIdleCPU' -benchtime 3x -count $(BENCHCOUNT) ./hub/webhooks/
	$(GO) test -run '^$$' -bench 'BenchmarkRelayOnline' -benchtime 1000x -count $(BENCHCOUNT) ./hub/webhooks/
	$(GO) test -run '^$$' -bench 'BenchmarkEvents(Ingest|Online)' -benchtime 2000x -count $(BENCHCOUNT) ./store/ledger/

.PHONY: bench-rules bench-disk
bench-rules: ## rules engine: 20 lines, 1,000 campaigns, 0/50/200 automatic (auto=0 and the frozen old engine are the same-run baselines)
	$(GO) test -run '^$$' -bench 'BenchmarkEvaluate$$|BenchmarkEvaluateInterleaved' -benchmem -count $(BENCHCOUNT) ./protocol/rules/

bench-disk: ## till disk per sale over 100,000 sales past the retention window, with and without pruning
	$(GO) test -run '^$$' -bench BenchmarkDiskPerSale -benchtime 100000x -count 1 -timeout 60m ./agent/

FLEET_TILLS ?= 10000
.PHONY: bench-fleet
bench-fleet: build ## the fleet benchmark: FLEET_TILLS (10000) simulated tills against bin/hub; FLEET_RATE, FLEET_DURATION, FLEET_WARMUP, FLEET_FETCH, FLEET_BUDGET (docs/operations.md)
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

.PHONY: bench-layout
LAYOUT_HISTORY ?= 200000
bench-layout: ## the ledger's layout: SQLite's cost a basket (CPU, wall, WAL bytes) of today's trees vs one row a basket and one a customer, after LAYOUT_HISTORY baskets (a design benchmark: store/ledger/layout)
	PUNCHCARD_LAYOUT_BENCH=1 PUNCHCARD_LAYOUT_HISTORY=$(LAYOUT_HISTORY) $(GO) test -run '^$$' -bench '^BenchmarkLayout$$' -benchtime 3000x -count 1 -timeout 60m ./store/ledger/layout/

.PHONY: bench-layout-pg
LAYOUT_PG_HISTORY ?= 50000
bench-layout-pg: ## the same baskets in PostgreSQL (a server of its own on a Unix socket; needs PostgreSQL installed): concurrent writers, today's layout vs one row a basket and one a customer, against SQLite's one writer (a design benchmark: store/ledger/layout)
	PUNCHCARD_LAYOUT_PG=1 PUNCHCARD_LAYOUT_HISTORY=$(LAYOUT_PG_HISTORY) $(GO) test -run '^$$' -bench '^BenchmarkLayoutPostgres$$' -benchtime 3000x -count 1 -timeout 60m ./store/ledger/layout/

.PHONY: bench-catchup
CATCHUP ?= 1000000
bench-catchup: ## one till drains a backlog of CATCHUP (1M) facts end to end, against the ledger's own ApplyBatches (BENCHCOUNT runs)
	PUNCHCARD_CATCHUP=$(CATCHUP) $(GO) test -run '^$$' -bench '^BenchmarkCatchUp$$' -benchtime 1x -count $(BENCHCOUNT) -timeout 60m ./hub/

.PHONY: chaos
chaos: ## the long fault-test suite: kills, partitions, broker restarts (needs mosquitto)
	$(GO) test -race -count=1 -timeout 60m -tags chaos -v ./cmd/punchcard/internal/chaos/

.PHONY: test-long
test-long: ## the randomized property tests with every seed under the race detector (make test runs fewer under -race; testutil.Rounds)
	PUNCHCARD_LONG=1 $(GO) test -race -count=1 -timeout 60m ./store/ledger/

clean: ## remove build output
	rm -rf $(BIN)

.PHONY: bench-snapshot
bench-snapshot: ## snapshots at scale: a till online vs offline under hub load (1,000 tills' traffic, campaign changes), delta sizes and build times at 0/10k/100k used codes, CPU per fetch as the fleet polls
	PUNCHCARD_LARGE=1 $(GO) test -count=1 -run 'TestSnapshotDeltaSize' -v ./hub/api/ | grep -E 'codes used|^(---|ok|FAIL)'
	PUNCHCARD_LARGE=1 $(GO) test -run '^$$' -bench 'BenchmarkSnapshotDelta' -benchtime 5x -count $(BENCHCOUNT) ./hub/api/
	$(GO) test -run '^$$' -bench 'BenchmarkTillOnlineVsOffline' -benchtime 1x -count $(BENCHCOUNT) -timeout 60m ./hub/
	$(GO) test -run '^$$' -bench 'BenchmarkSnapshotFleet' -benchtime 3000x -count $(BENCHCOUNT) ./hub/api/
