# portcullis: an mTLS gateway and tunnel for raw TCP.
# `make help` lists the targets.

SHELL   := bash
GO      ?= go
BIN     := bin
PKGS    := ./...
FUZZTIME ?= 30s
# The tests of the yamux fork's own changes (third_party/yamux); upstream's
# suite, some of whose timing tests fail now and then on any busy machine
# (before the fork's changes as after), is `make test-yamux`.
YAMUX_OWN_TESTS := Flood|Stray|Reset|Budget|Remote|Peer|Closed|NumAccepted|RecvBuffer|DirectWrite|DirectReceive

# make install: PREFIX is where things go, DESTDIR a staging root for
# packagers (the files then name PREFIX, not DESTDIR).
PREFIX        ?= /usr/local
DESTDIR       ?=
BINDIR        ?= $(PREFIX)/bin
BASHCOMPDIR   ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR    ?= $(PREFIX)/share/zsh/site-functions
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR        ?= $(PREFIX)/share/doc/portcullis
INSTALL       ?= install

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' \
	  '{ name[NR] = $$1; text[NR] = $$2; if (length($$1) > w) w = length($$1) } \
	   END { for (i = 1; i <= NR; i++) printf "  %-" w "s   %s\n", name[i], text[i] }'

build: ## build bin/gateway and bin/tunnel
	$(GO) build -o $(BIN)/ ./cmd/gateway ./cmd/tunnel

lint: ## gofmt and go vet (both modules)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	cd bench/acl && $(GO) vet ./...

cross: ## build every package for darwin and windows too
	GOOS=darwin $(GO) build $(PKGS)
	GOOS=windows $(GO) build $(PKGS)

test: lint cross ## lint, cross-builds, every test (race detector, goroutine-leak checks), then failures, skips and counts
	cd bench/acl && $(GO) test -count=1 -run . ./...
	$(GO) test -race -count=1 -timeout 10m -run '$(YAMUX_OWN_TESTS)' github.com/hashicorp/yamux
	set -o pipefail; $(GO) test -race -count=1 -timeout 20m -json $(PKGS) | $(GO) run ./internal/testreport

test-yamux: ## every test of the yamux fork, upstream's included
	$(GO) test -count=1 -timeout 10m github.com/hashicorp/yamux

test-short: ## the quick tests only
	$(GO) test -short -count=1 $(PKGS)

fuzz: ## run every fuzzer for FUZZTIME each (default 30s)
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

install: build ## install the binaries, completions, systemd units and docs under $(DESTDIR)$(PREFIX) (default /usr/local)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 0755 $(BIN)/gateway $(BIN)/tunnel $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 0644 contrib/completion/gateway.bash $(DESTDIR)$(BASHCOMPDIR)/gateway
	$(INSTALL) -m 0644 contrib/completion/tunnel.bash $(DESTDIR)$(BASHCOMPDIR)/tunnel
	$(INSTALL) -m 0644 contrib/completion/_gateway contrib/completion/_tunnel $(DESTDIR)$(ZSHCOMPDIR)/
	sed 's|/usr/local/bin/gateway|$(BINDIR)/gateway|' contrib/systemd/portcullis-gateway.service > $(DESTDIR)$(SYSTEMDUNITDIR)/portcullis-gateway.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/portcullis-gateway.service
	$(INSTALL) -m 0644 contrib/systemd/portcullis-gateway.socket $(DESTDIR)$(SYSTEMDUNITDIR)/
	$(INSTALL) -m 0644 README.md CHANGELOG.md LICENSE contrib/systemd/gateway.env.example $(DESTDIR)$(DOCDIR)/

uninstall: ## remove what make install put under $(DESTDIR)$(PREFIX)
	rm -f $(DESTDIR)$(BINDIR)/gateway $(DESTDIR)$(BINDIR)/tunnel \
	  $(DESTDIR)$(BASHCOMPDIR)/gateway $(DESTDIR)$(BASHCOMPDIR)/tunnel \
	  $(DESTDIR)$(ZSHCOMPDIR)/_gateway $(DESTDIR)$(ZSHCOMPDIR)/_tunnel \
	  $(DESTDIR)$(SYSTEMDUNITDIR)/portcullis-gateway.service $(DESTDIR)$(SYSTEMDUNITDIR)/portcullis-gateway.socket
	rm -rf $(DESTDIR)$(DOCDIR)

bench: ## the end-to-end suite against baselines (writes bench/RESULTS.md), then the ACL comparison
	$(GO) run ./bench/suite
	cd bench/acl && ./run.sh

bench-latency: ## only the latency section of the suite (ping-pong, pgbench -S) against a relay pair; prints it
	$(GO) run ./bench/suite -latency-only

bench-micro: ## only the Go microbenchmarks beside the hot code
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./acl ./mux ./gateway ./config

demo: build ## generate a dev PKI in .demo/ and push data through gateway + tunnel on loopback
	./scripts/demo.sh

clean: ## remove build output and the demo directory
	rm -rf $(BIN) .demo

.PHONY: help build install uninstall lint cross test test-yamux test-short fuzz bench bench-latency bench-micro demo clean
