# LeadMaster. `make demo` runs the appliance on its embedded default;
# `make test` is what CI runs.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO      ?= go
FUZZTIME ?= 10s

.PHONY: build demo test vet fmt-check bench fuzz clean chaos

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o leadmaster .

# The appliance on its built-in WhatsApp simulator, a demo cliente and the
# example campaign; prints the page's URL with a login link.
demo:
	$(GO) run . demo

test: vet fmt-check
	$(GO) test -race -count=1 -timeout 20m ./...
	@# Tests that provoke data races inside whatsmeow itself skip under -race; run them without.
	$(GO) test -count=1 -timeout 10m -run 'TestFaults_EachClassEndsInItsDocumentedState|TestFaultNeverAcked|TestSendReceiptsReplies|TestFaults_LogoutMidCampaignPausesWithNothingUnacked|TestRestartAfterRemoteLogout|TestServerLogoutAndRepair|TestStreamReplaced|TestWasim_LogoutDeletesDeviceAndRunsHook' ./engine/e2e/ ./engine/wa/ ./wasim/ ./kv/devicestore/e2e/

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# The large crash test: 10,000 envíos, 20 SIGKILLs of `leadmaster serve`
# and wasim's seeded faults (drops, error acks, lost and slow acks); prints
# the invariants. CHAOS_SEED=N replays a seed.
chaos:
	LEADMASTER_CHAOS=1 $(if $(CHAOS_SEED),LEADMASTER_CRASH_SEED=$(CHAOS_SEED)) \
		$(GO) test -count=1 -run '^TestCrash$$' -timeout 60m -v .

# Benchmarks; figures and their exact commands are in BENCHMARKS.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# A short run of every fuzz target (FUZZTIME each).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

clean:
	rm -f leadmaster
