# fake.mk: builds the fake CUDA driver and cuBLAS (README.md). Run from the
# repository root through the top Makefile: make fake-cuda, make fake-cuda-test.
OUT := .build/fake-cuda
SRC := kernels/fakecuda
CXX ?= g++
CUBLAS_MAJORS := 11 12 13

# The CUDA 11.8 headers (fetched once by .ci/cuda-headers.sh), so that every
# signature is the one the binaries were compiled against.
CUDA_INC := $(shell bash .ci/cuda-headers.sh | sed -n "s/^export CGO_CFLAGS='-I\(.*\)'$$/\1/p")
ifeq ($(CUDA_INC),)
$(error fake.mk: .ci/cuda-headers.sh gave no CUDA include directory)
endif

CXXFLAGS := -std=c++20 -O2 -g -fPIC -Wall -Wno-unused-function -I$(OUT) -I$(CUDA_INC)
HEADERS := $(wildcard $(SRC)/*.h)
DRIVER := driver memory module kernels
KERNEL_SRC := $(wildcard kernels/*.cu kernels/*.cuh) $(SRC)/fiber_emu.h

.PHONY: all test check-symbols plants
.SECONDARY: # keep the generated stubs and lists

all: $(OUT)/libcuda.so.1 $(foreach n,$(CUBLAS_MAJORS),$(OUT)/libcublas.so.$(n))

$(OUT)/errors.inc: $(CUDA_INC)/cuda.h
	@mkdir -p $(OUT)
	awk '/^ *CUDA_(SUCCESS|ERROR_[A-Z0-9_]+) *= *[0-9]+/ { print "{" $$1 ", \"" $$1 "\"}," }' $< >$@

$(OUT)/%.o: $(SRC)/%.cc $(HEADERS) $(OUT)/errors.inc
	$(CXX) $(CXXFLAGS) -c -o $@ $<

$(OUT)/kernels.o: $(KERNEL_SRC)

# The driver's own definitions, then stubs for every other imported symbol.
$(OUT)/driver-defined.txt: $(DRIVER:%=$(OUT)/%.o)
	nm --defined-only -g $^ | awk '$$2 == "T" { print $$3 }' | sort -u >$@

$(OUT)/stubs-cuda.cc: $(SRC)/symbols.txt $(OUT)/driver-defined.txt $(SRC)/stubs.sh
	bash $(SRC)/stubs.sh cu $(SRC)/symbols.txt $(OUT)/driver-defined.txt >$@

$(OUT)/stubs-%.o: $(OUT)/stubs-%.cc
	$(CXX) $(CXXFLAGS) -c -o $@ $<

$(OUT)/libcuda.so.1: $(DRIVER:%=$(OUT)/%.o) $(OUT)/stubs-cuda.o
	$(CXX) -shared -o $@ -Wl,-soname,libcuda.so.1 -Wl,--no-undefined $^ -lpthread

# One source for every libcublas.so.N; the version node libcublas.so.N is
# what a binary linked against that soname asks for (cublasSgemm_v2@libcublas.so.11).
$(OUT)/cublas-%.o: $(SRC)/cublas.cc $(HEADERS)
	$(CXX) $(CXXFLAGS) -DFAKE_CUBLAS_MAJOR=$* -c -o $@ $<

$(OUT)/cublas-defined-%.txt: $(OUT)/cublas-%.o
	nm --defined-only -g $< | awk '$$2 == "T" { print $$3 }' | sort -u >$@

$(OUT)/stubs-cublas-%.cc: $(SRC)/symbols.txt $(OUT)/cublas-defined-%.txt $(SRC)/stubs.sh
	bash $(SRC)/stubs.sh cublas $(SRC)/symbols.txt $(OUT)/cublas-defined-$*.txt >$@

$(OUT)/libcublas.so.%.map:
	@mkdir -p $(OUT)
	printf 'libcublas.so.%s {\n global: cublas*; fakecuda_cublas*;\n local: *;\n};\n' $* >$@

$(OUT)/libcublas.so.%: $(OUT)/cublas-%.o $(OUT)/stubs-cublas-%.o $(OUT)/libcublas.so.%.map $(OUT)/libcuda.so.1
	$(CXX) -shared -o $@ -Wl,-soname,libcublas.so.$* -Wl,--version-script=$(OUT)/libcublas.so.$*.map \
		-Wl,--no-undefined $(OUT)/cublas-$*.o $(OUT)/stubs-cublas-$*.o -L$(OUT) -l:libcuda.so.1 -Wl,-rpath,'$$ORIGIN'

$(OUT)/test_fake: $(SRC)/test_fake.cc $(HEADERS) all
	$(CXX) $(CXXFLAGS) -DKERNELS_DIR='"$(CURDIR)/kernels"' -o $@ $< -L$(OUT) -l:libcuda.so.1 -l:libcublas.so.13 -Wl,-rpath,'$$ORIGIN' -lpthread

# test: the fake's own cases, then the default-build binaries against it:
# their imports are all defined, and `batchlab devices` runs under the fake
# with each cuBLAS major.
test: $(OUT)/test_fake $(OUT)/bin/batchlab $(OUT)/bin/device.test
	$(OUT)/test_fake
	bash $(SRC)/check-symbols.sh $(OUT) $(OUT)/bin/batchlab $(OUT)/bin/device.test
	@for n in $(CUBLAS_MAJORS); do \
		BATCHLAB_CUBLAS=libcublas.so.$$n LD_LIBRARY_PATH=$(CURDIR)/$(OUT) $(OUT)/bin/batchlab devices | \
			grep -q "fakecuda.*cuBLAS $$n\.0\.0 (libcublas.so.$$n)" || { echo "devices under the fake with libcublas.so.$$n failed" >&2; exit 1; }; \
		echo "devices under the fake with libcublas.so.$$n: ok"; \
	done

# The default-build binaries (the CUDA device compiled in), built here so
# that the check does not depend on a GPU toolkit.
.PHONY: $(OUT)/bin/batchlab $(OUT)/bin/device.test
$(OUT)/bin/batchlab:
	eval "$$(bash .ci/cuda-headers.sh)" && go build -o $@ ./cmd/batchlab
$(OUT)/bin/device.test:
	eval "$$(bash .ci/cuda-headers.sh)" && go test -c -o $@ ./engine/device

# check-symbols BINS="a b": every driver and cuBLAS symbol they import is in
# symbols.txt and defined by the fake libraries.
check-symbols: all
	bash $(SRC)/check-symbols.sh $(OUT) $(BINS)

# plants: known bugs planted one at a time in a scratch worktree, each of
# which must fail under the fake with its message (plants.sh).
plants: all
	bash $(SRC)/plants.sh
