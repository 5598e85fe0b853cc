# batchlab — see README.md.
#
#   make train       fetch MNIST (once) and train the reference MLP for one epoch
#   make test        go vet + go test -tags cpu ./...  (no GPU, no CUDA needed)
#   make cuda-check  compile and vet the CUDA build against Debian's CUDA 11.8
#                    headers and link stubs (no GPU needed; nothing runs)
#   make build       bin/batchlab: the CUDA build where a CUDA toolkit is found,
#                    else the CPU-only build
GO ?= go
CUDA_HOME ?= /usr/local/cuda

# The default (CUDA) build links gorgonia.org/cu, whose init exits the
# program on a machine without a GPU; where no CUDA toolkit is installed we
# build with -tags cpu instead.
TAGS ?= $(if $(wildcard $(CUDA_HOME)/include/cuda.h),,cpu)

# The CUDA device has no kernels yet (GEMM only), so training runs on the CPU
# unless told otherwise: make train DEVICE=cuda ARGS='--epochs 3'.
DEVICE ?= cpu
ARGS ?=

.PHONY: build train data test cuda-check clean

build:
	$(GO) build -tags '$(TAGS)' -o bin/batchlab ./cmd/batchlab

data:
	$(GO) run -tags cpu ./cmd/batchlab data

train: data
	$(GO) run -tags '$(TAGS)' ./cmd/batchlab train --device $(DEVICE) $(ARGS)

test:
	$(GO) vet -tags cpu ./...
	$(GO) test -tags cpu ./...

# Compile (not run) the default build: everything, every test binary, vet.
cuda-check:
	eval "$$(bash .ci/cuda-headers.sh)" && \
	$(GO) build ./... && \
	$(GO) vet ./... && \
	$(GO) test -c -o $$(mktemp -d) ./...

clean:
	rm -rf bin
