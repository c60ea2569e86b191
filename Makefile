# llem — build, test, benchmark.
#   make quickstart   build llem and run examples/quickstart.cue
#   make test         the whole test suite (what .ci/run calls)
#   make bench        Go benchmarks (speed and memory targets)
#   make lint         go vet, gofmt check, dockerfilelint
#   make fuzz         every fuzz target for FUZZTIME (30s) each

GO      ?= go
# go-nvml's cgo prolog warns about every deprecated NVML call; the warnings say nothing about llem.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations
TOOLS   := $(CURDIR)/.tools
CUE     := $(TOOLS)/bin/cue
READERS := $(CURDIR)/tools/parquet-readers
VERSION ?= 0.1.0-dev
COMMIT  ?= $(shell git describe --always --dirty --exclude '*' 2>/dev/null)
LDFLAGS := -X github.com/llenergymeasure/llem/internal/version.Version=$(VERSION) \
           -X github.com/llenergymeasure/llem/internal/version.BuildCommit=$(COMMIT)

.PHONY: build quickstart test test-short bench fuzz deps vet lint clean docs

# build makes ./llem, the start-up front (cmd/llem-front: --version, params
# and completions in ~10 ms; static, no cgo: no dynamic loader at start),
# and ./llem-core beside it, the full program (cmd/llem), which the front
# execs for every other command. go build ./cmd/llem alone gives the same
# tool as one binary with a slower start.
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o llem-core ./cmd/llem
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o llem ./cmd/llem-front

quickstart: build
	./llem eval examples/quickstart.cue

# deps installs the test-only tools: the official CUE CLI (for cue vet of
# examples/ and studies/) and the independent Parquet readers (npm).
LINT    := $(CURDIR)/tools/lint

deps: $(CUE) $(READERS)/node_modules $(LINT)/node_modules

$(CUE):
	GOBIN=$(TOOLS)/bin $(GO) install cuelang.org/go/cmd/cue@v0.17.1

$(LINT)/node_modules: $(LINT)/package.json
	cd $(LINT) && npm install --no-audit --no-fund --loglevel=error
	touch $@

$(READERS)/node_modules: $(READERS)/package.json
	cd $(READERS) && npm install --no-audit --no-fund --loglevel=error
	touch $@

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# lint is vet (go vet and the gofmt check) plus dockerfilelint on
# docker/*.Dockerfile, the check TestDockerfilesAndReleaseMatrix also runs.
lint: vet $(LINT)/node_modules
	$(LINT)/node_modules/.bin/dockerfilelint -c docker docker/*.Dockerfile

# fuzz runs every fuzz target (func FuzzX in a _test.go file) for FUZZTIME,
# one at a time: go test -fuzz takes one target of one package.
FUZZTIME ?= 30s
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.tools '^func Fuzz' . | sort); do \
	  for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$fn ($$(dirname $$f), $(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$(dirname $$f); \
	  done; \
	done

# test is the README's test command and what CI runs.
test: deps vet
	PATH=$(TOOLS)/bin:$$PATH LLEM_PARQUET_READERS=$(READERS) $(GO) test -race -count=1 -timeout 45m ./...
	# one file at a time: each example/study is its own CUE package
	for f in examples/*.cue studies/*.cue; do $(CUE) vet ./$$f || exit 1; done

test-short:
	$(GO) test -short ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# docs regenerates generated documentation (docs/params.md from schema/*.cue)
# and schema/grids_gen.cue; pkg/params.TestDocsFresh and TestGridCUEFresh fail
# when they are stale.
docs:
	$(GO) generate ./pkg/params ./cmd/llem

clean:
	rm -rf llem llem-core $(TOOLS)
