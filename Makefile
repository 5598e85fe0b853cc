# batchlab — see README.md.
#
#   make train       fetch MNIST (once) and train the reference MLP for one epoch
#   make test        go vet + go test -tags cpu ./...  (no GPU, no CUDA needed)
#   make cuda-check  compile and vet the CUDA build against Debian's CUDA 11.8
#                    headers and link stubs (no GPU needed; nothing runs)
#   make build       bin/batchlab: the CUDA build where a CUDA toolkit is found,
#                    else the CPU-only build
#   make kernels     regenerate kernels/*.ptx from kernels/*.cu with Debian's
#                    CUDA 11.8 nvcc (fetched once into ~/.cache/batchlab)
#   make kernels-check  fail if the committed PTX differs from what the sources
#                    give, and validate it with ptxas for sm_80 and sm_90
#   make fake-gpu-test  every test of the default (CUDA) build, go test ./...,
#                    on the fake driver (no GPU): the conformance suite on the
#                    CUDA device, graphs, CPU-vs-GPU training, train --device
#                    cuda for every --transfer; fails if any test skips
#   make gpu-kit     dist/gpu-kit/ and dist/gpu-kit.tar.gz: prebuilt binaries,
#                    test binaries, MNIST and run.sh OUTDIR, the whole GPU check
#                    for a GPU machine without Go, compiler or network
#   make gpu-test    on a GPU machine with Go: make gpu-kit, then its run.sh
#                    (results in gpu-results/)
#   make bench-transfer  host→device cost per batch by batch size and transfer
#                    strategy, the fit α + bytes/β, plots in bench-out/
#   make bench-epoch one MNIST epoch per batch size, split into transfer /
#                    compute / update, plot in bench-out/
#   make bench-h2d   go test -bench H2D -count 6: the transfer benchmarks at four
#                    batch sizes, benchstat-ready (6 samples each), about a minute
#   make bench-step  go test -bench Step -count 6: a training step of the reference
#                    MLP, batchlab's CPU device beside Gorgonia's TapeMachine
#   make fake-cuda   the fake CUDA driver and cuBLAS (kernels/fakecuda) in
#                    .build/fake-cuda: run a default-build binary without a
#                    GPU with LD_LIBRARY_PATH=$PWD/.build/fake-cuda
#   make fake-cuda-test  the fake's own tests of its strictness rules
#   make fake-cuda-plants  plant known bugs one at a time; each must fail
#                    under the fake with a message naming it (a minute)
#   make compare-pytorch  train the reference MLP with PyTorch and batchlab on
#                    this machine, same threads and batches: samples/s and ratio
GO ?= go
CUDA_HOME ?= /usr/local/cuda

# The default (CUDA) build links gorgonia.org/cu, whose init exits the
# program on a machine without a GPU; where no CUDA toolkit is installed we
# build with -tags cpu instead.
#
# Where OpenBLAS is installed (Debian: libopenblas-dev, found by pkg-config)
# the CPU device multiplies with it (-tags openblas), else with its own Go
# SGEMM; `go test -tags cpu ./...` always tests the Go one.
comma := ,
CPU_TAG := $(if $(wildcard $(CUDA_HOME)/include/cuda.h),,cpu)
OPENBLAS_TAG := $(shell pkg-config --exists openblas 2>/dev/null && echo openblas)
TAGS ?= $(CPU_TAG)$(if $(and $(CPU_TAG),$(OPENBLAS_TAG)),$(comma))$(OPENBLAS_TAG)

# Training runs on the CPU unless told otherwise: make train DEVICE=cuda
# ARGS='--epochs 3 --graph'.
DEVICE ?= cpu
ARGS ?=

.PHONY: fake-cuda fake-cuda-test fake-gpu-test gpu-kit build train data test cuda-check kernels kernels-check gpu-test clean bench-transfer bench-epoch bench-h2d bench-step compare-pytorch

# -buildvcs=auto records the commit (batchlab --version, run logs) even
# where GOFLAGS says -buildvcs=false, as on the machines this was written on.
build:
	$(GO) build -buildvcs=auto -tags '$(TAGS)' -o bin/batchlab ./cmd/batchlab

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

kernels:
	bash .ci/kernels.sh

kernels-check:
	bash .ci/kernels.sh check

fake-gpu-test: fake-cuda data
	bash .ci/fake-gpu-test.sh

gpu-kit:
	bash .ci/gpu-kit.sh

gpu-test: gpu-kit
	dist/gpu-kit/run.sh gpu-results

bench-transfer:
	$(GO) run -tags '$(TAGS)' ./cmd/batchlab bench transfer --device $(DEVICE) --out bench-out $(ARGS)

bench-epoch: data
	$(GO) run -tags '$(TAGS)' ./cmd/batchlab bench epoch --device $(DEVICE) --out bench-out $(ARGS)

# benchstat needs 6 samples of a benchmark or more for its confidence
# interval: -count 6 of short runs of four batch sizes (bench-h2d) and all
# four of Step (bench-step), each about a minute on the 2-core reference
# machine. Widen with H2D='H2D' (every batch size, ten times longer) or
# BENCHTIME=1s; save with > new.txt and read with benchstat new.txt.
BENCHTIME ?= 100ms
H2D ?= H2D/batch=(1|16|256|4096)$$
bench-h2d:
	$(GO) test -tags '$(TAGS)' -run '^$$' -bench '$(H2D)' -benchtime $(BENCHTIME) -count 6 ./bench/transfer

bench-step:
	$(GO) test -tags '$(TAGS)' -run '^$$' -bench Step -benchtime $(BENCHTIME) -count 6 ./bench

compare-pytorch: data
	bash bench/compare_pytorch.sh $(ARGS)

clean:
	rm -rf bin bench-out dist

fake-cuda:
	$(MAKE) -f kernels/fakecuda/fake.mk all

fake-cuda-test:
	$(MAKE) -f kernels/fakecuda/fake.mk test

fake-cuda-plants:
	$(MAKE) -f kernels/fakecuda/fake.mk plants
