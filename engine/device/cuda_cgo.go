//go:build !cpu

package device

// The driver calls gorgonia.org/cu lacks or makes too little of: pinned
// host memory, stream capture and graph launch, modules loaded with the
// JIT's error log, and launches with a packed parameter buffer. Each returns
// an error naming the call and the CUDA error (cuGetErrorName,
// cuGetErrorString); cu's own error type is unexported, so these are errors
// of our own, and call (cuda.go) turns cu's into the same.
//
// CUDA 12 headers map cuGraphInstantiate to a three-argument version;
// cuGraphInstantiateWithFlags is the same call under both 11.8 and 12.

/*
#cgo LDFLAGS: -lcuda
#include <stdint.h>
#include <stdlib.h>
#include <cuda.h>

// The JIT writes what it rejects in PTX (with the line) into log.
static CUresult bl_module_load(CUmodule *m, const char *ptx, char *log, unsigned size) {
	CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
	void *vals[] = {log, (void *)(uintptr_t)size};
	return cuModuleLoadDataEx(m, ptx, 2, opts, vals);
}

// params is the packed argument buffer (launch.params); the driver copies
// it before returning. Built here because extra is an array holding
// pointers, which Go may not hand to C.
static CUresult bl_launch(CUfunction f, unsigned grid, unsigned block, CUstream s, void *params, size_t size) {
	void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, params, CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END};
	return cuLaunchKernel(f, grid, 1, 1, block, 1, 1, 0, s, NULL, extra);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unsafe"

	"gorgonia.org/cu"
)

// driverError is a failed driver call: its name, the CUresult, and the
// driver's name and description of it.
type driverError struct {
	call       string
	code       C.CUresult
	name, desc string
}

func (e *driverError) Error() string {
	return fmt.Sprintf("%s: %s (%s)", e.call, e.name, e.desc)
}

// cuErr maps a CUresult of call to an error; nil for CUDA_SUCCESS.
func cuErr(call string, r C.CUresult) error {
	if r == C.CUDA_SUCCESS {
		return nil
	}
	var name, desc *C.char
	C.cuGetErrorName(r, &name)
	C.cuGetErrorString(r, &desc)
	e := &driverError{call: call, code: r, name: fmt.Sprintf("CUDA error %d", int(r)), desc: "no description"}
	if name != nil {
		e.name = C.GoString(name)
	}
	if desc != nil {
		e.desc = C.GoString(desc)
	}
	return e
}

// cuResultErr maps an error of gorgonia.org/cu to ours, with the driver's
// description (cu's names only the code). cu's result type is unexported:
// it is an int of package cu, which reflect can read.
func cuResultErr(call string, err error) error {
	v := reflect.ValueOf(err)
	if v.Kind() != reflect.Int || v.Type().PkgPath() != "gorgonia.org/cu" {
		return fmt.Errorf("%s: %w", call, err)
	}
	return cuErr(call, C.CUresult(v.Int()))
}

// isOutOfMemory reports whether err is a driver call's out-of-memory.
func isOutOfMemory(err error) bool {
	var e *driverError
	return errors.As(err, &e) && e.code == C.CUDA_ERROR_OUT_OF_MEMORY
}

// driverVersion is cuDriverGetVersion's, as "13.0".
func driverVersion() (string, error) {
	var v C.int
	if err := cuErr("cuDriverGetVersion", C.cuDriverGetVersion(&v)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10), nil
}

// cuModule and cuFunction are a loaded PTX module and one of its kernels.
type cuModule struct{ m C.CUmodule }
type cuFunction struct{ f C.CUfunction }

// moduleLoad loads PTX, which the driver JIT-compiles for the GPU; an
// error carries the JIT's log.
func moduleLoad(ptx string) (cuModule, error) {
	const logSize = 8 << 10
	cptx, log := C.CString(ptx), (*C.char)(C.calloc(logSize, 1))
	defer C.free(unsafe.Pointer(cptx))
	defer C.free(unsafe.Pointer(log))
	var m cuModule
	if err := cuErr("cuModuleLoadDataEx", C.bl_module_load(&m.m, cptx, log, logSize)); err != nil {
		if msg := strings.TrimSpace(C.GoString(log)); msg != "" {
			return cuModule{}, fmt.Errorf("%w; JIT log: %s", err, strings.ReplaceAll(msg, "\n", "; "))
		}
		return cuModule{}, err
	}
	return m, nil
}

func (m cuModule) function(name string) (cuFunction, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var f cuFunction
	if err := cuErr("cuModuleGetFunction("+name+")", C.cuModuleGetFunction(&f.f, m.m, cname)); err != nil {
		return cuFunction{}, err
	}
	return f, nil
}

func (m cuModule) unload() error { return cuErr("cuModuleUnload", C.cuModuleUnload(m.m)) }

// launch issues f on s with the packed parameters.
func (f cuFunction) launch(grid, block int, s cu.Stream, params []byte) error {
	var p unsafe.Pointer
	if len(params) > 0 {
		p = unsafe.Pointer(&params[0])
	}
	return cuErr("cuLaunchKernel", C.bl_launch(f.f, C.uint(grid), C.uint(block), cstream(s), p, C.size_t(len(params))))
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
