# ptc-credentials — build, test and package the two Lambda functions.
#
# `sam build` calls build-RotatorFunction / build-ProvisionerFunction with ARTIFACTS_DIR set
# (Metadata: BuildMethod: makefile). Everything else is for people and CI.

GO        ?= go
GOARCH    ?= arm64
BUILD_FLAGS := -tags lambda.norpc -trimpath -ldflags '-s -w'
DIST      ?= dist
FUNCTIONS := rotator provisioner

export CGO_ENABLED = 0

.PHONY: all build test unit e2e lint vet staticcheck cfn-lint bench package clean build-RotatorFunction build-ProvisionerFunction

all: build

# --- what sam build calls --------------------------------------------------------------------
build-RotatorFunction:
	GOOS=linux GOARCH=$(GOARCH) $(GO) build $(BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/rotator

build-ProvisionerFunction:
	GOOS=linux GOARCH=$(GOARCH) $(GO) build $(BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/provisioner

# --- for people and CI -----------------------------------------------------------------------
## build: linux bootstrap binaries for $(GOARCH) under $(DIST)/<function>/bootstrap
build:
	@for f in $(FUNCTIONS); do \
	  if [ -d functions/$$f ]; then \
	    GOOS=linux GOARCH=$(GOARCH) $(GO) build $(BUILD_FLAGS) -o $(DIST)/$$f/bootstrap ./functions/$$f || exit 1; \
	    ls -l $(DIST)/$$f/bootstrap; \
	  fi; \
	done

## test: lint, then every test (moto_server must be on PATH; the tests start it themselves)
test: lint unit

unit:
	$(GO) test -count=1 ./...

## bin/aws-lambda-rie: the Lambda Runtime Interface Emulator pinned in tools.mod, for the host
bin/aws-lambda-rie: tools.mod tools.sum
	GOOS= GOARCH= $(GO) build -modfile=tools.mod -o $@ github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie

## e2e: the real bootstraps (built for the host by the tests) under aws-lambda-rie, against moto
e2e: bin/aws-lambda-rie
	GOOS= GOARCH= PTC_RIE_BIN=$(CURDIR)/bin/aws-lambda-rie $(GO) test -count=1 ./tests/e2e/

## demo: the whole story on this machine, no AWS account: four registries provisioned, rotated,
## validated and deleted through the real bootstraps under aws-lambda-rie (tools/demo)
.PHONY: demo
demo: bin/aws-lambda-rie
	GOOS= GOARCH= $(GO) run ./tools/demo -rie $(CURDIR)/bin/aws-lambda-rie

## lint: go vet, staticcheck (pinned in tools.mod), then cfn-lint on the template and examples
lint: vet staticcheck
	cfn-lint template.yaml examples/*.yaml && echo "cfn-lint: template.yaml and examples pass"

vet:
	$(GO) vet ./...

# staticcheck depends on vet so that it runs after it even under make -j (vet's findings are
# the cheaper ones to read first); it is built for this machine, like the other host tools.
staticcheck: vet
	GOOS= GOARCH= $(GO) tool -modfile=tools.mod staticcheck ./...

## bench: the benchmarks behind BENCHMARKS.md
bench:
	GO=$(GO) ./scripts/bench.sh

## fuzz: every fuzz target for $(FUZZTIME) each, one at a time (go test allows one -fuzz target
## per run); `make test` already runs their seed corpora. See docs/fuzzing.md.
FUZZTIME ?= 30s
FUZZ_TARGETS := \
	rotation:FuzzHandle \
	customresource:FuzzValidate customresource:FuzzResponseBody \
	provision:FuzzParseProperties provision:FuzzPropertyStrings provision:FuzzValidateSchedule provision:FuzzPhysicalID \
	upstream:FuzzDecodeSource \
	upstream/dockerhub:FuzzParseSource upstream/dockerhub:FuzzTokenAPI \
	upstream/acr:FuzzParseSource upstream/acr:FuzzTokenAPI \
	upstream/ghcr:FuzzParseSource upstream/ghcr:FuzzVerifyAPI \
	upstream/gitlab:FuzzParseSource upstream/gitlab:FuzzTokenAPI \
	upstream/httpapi:FuzzDo upstream/httpapi:FuzzRedactURL \
	registryauth:FuzzCheck \
	ptcsecret:FuzzParse ptcsecret:FuzzLabel
.PHONY: fuzz
fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  pkg=./internal/$${t%%:*}; name=$${t##*:}; \
	  echo "== $$name ($$pkg)"; \
	  GOOS= GOARCH= $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

## package: zips ready to upload (bootstrap at the zip root, as provided.al2023 wants)
package: build
	@for f in $(FUNCTIONS); do \
	  if [ -f $(DIST)/$$f/bootstrap ]; then \
	    GOOS= GOARCH= $(GO) run ./tools/lambdazip -o $(DIST)/$$f-$(GOARCH).zip $(DIST)/$$f/bootstrap && ls -l $(DIST)/$$f-$(GOARCH).zip; \
	  fi; \
	done

clean:
	rm -rf $(DIST) .aws-sam
