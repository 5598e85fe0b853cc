//go:build !cpu

package device

// The few driver calls gorgonia.org/cu lacks: pinned host memory, stream
// capture and graph launch. Each returns an error naming the call and the
// CUDA error (cuGetErrorName, cuGetErrorString); cu's own error type is
// unexported, so these are errors of our own.
//
// CUDA 12 headers map cuGraphInstantiate to a three-argument version;
// cuGraphInstantiateWithFlags is the same call under both 11.8 and 12.

/*
#cgo LDFLAGS: -lcuda
#include <cuda.h>
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"
)

// cuErr maps a CUresult of call to an error; nil for CUDA_SUCCESS.
func cuErr(call string, r C.CUresult) error {
	if r == C.CUDA_SUCCESS {
		return nil
	}
	var name, desc *C.char
	C.cuGetErrorName(r, &name)
	C.cuGetErrorString(r, &desc)
	if name == nil {
		return fmt.Errorf("%s: CUDA error %d", call, int(r))
	}
	return fmt.Errorf("%s: %s (%s)", call, C.GoString(name), C.GoString(desc))
}

// cstream is cu's stream as our C type: the same CUstream pointer, but cu's
// cgo types are distinct Go types from ours.
func cstream(s cu.Stream) C.CUstream { return C.CUstream(unsafe.Pointer(s.C())) }

// memHostAlloc returns n bytes of page-locked host memory.
func memHostAlloc(n int) (unsafe.Pointer, error) {
	var p unsafe.Pointer
	if err := cuErr("cuMemHostAlloc", C.cuMemHostAlloc(&p, C.size_t(n), 0)); err != nil {
		return nil, err
	}
	return p, nil
}

func memFreeHost(p unsafe.Pointer) error { return cuErr("cuMemFreeHost", C.cuMemFreeHost(p)) }

// beginCapture starts recording s's work into a graph. Thread-local mode:
// only calls from this OS thread (cu's locked one, where all of ours run)
// that would be unsafe during capture are refused.
func beginCapture(s cu.Stream) error {
	return cuErr("cuStreamBeginCapture", C.cuStreamBeginCapture(cstream(s), C.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL))
}

// endCapture stops recording and instantiates the graph for launching.
func endCapture(s cu.Stream) (C.CUgraphExec, error) {
	var g C.CUgraph
	if err := cuErr("cuStreamEndCapture", C.cuStreamEndCapture(cstream(s), &g)); err != nil {
		return nil, err
	}
	defer C.cuGraphDestroy(g) // the executable graph is a copy
	var exec C.CUgraphExec
	if err := cuErr("cuGraphInstantiate", C.cuGraphInstantiateWithFlags(&exec, g, 0)); err != nil {
		return nil, err
	}
	return exec, nil
}

func graphLaunch(exec C.CUgraphExec, s cu.Stream) error {
	return cuErr("cuGraphLaunch", C.cuGraphLaunch(exec, cstream(s)))
}

func graphExecDestroy(exec C.CUgraphExec) error {
	return cuErr("cuGraphExecDestroy", C.cuGraphExecDestroy(exec))
}
