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

.PHONY: all build test unit e2e lint vet cfn-lint bench package clean build-RotatorFunction build-ProvisionerFunction

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

## lint: go vet, and cfn-lint on the template and examples when they exist
lint: vet
	@if [ -f template.yaml ]; then cfn-lint template.yaml examples/*.yaml; fi

vet:
	$(GO) vet ./...

## bench: the benchmarks behind BENCHMARKS.md
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## package: zips ready to upload (bootstrap at the zip root, as provided.al2023 wants)
package: build
	@for f in $(FUNCTIONS); do \
	  if [ -f $(DIST)/$$f/bootstrap ]; then \
	    (cd $(DIST)/$$f && rm -f ../$$f-$(GOARCH).zip && zip -q -X ../$$f-$(GOARCH).zip bootstrap) && ls -l $(DIST)/$$f-$(GOARCH).zip; \
	  fi; \
	done

clean:
	rm -rf $(DIST) .aws-sam
