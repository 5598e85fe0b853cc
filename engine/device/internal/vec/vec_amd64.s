//go:build amd64 && !purego

#include "textflag.h"

// The loops of vec.go, eight floats at a time; n is a positive multiple of 8.

DATA absMask<>+0(SB)/4, $0x7fffffff
GLOBL absMask<>(SB), RODATA|NOPTR, $4
DATA signMask<>+0(SB)/4, $0x80000000
GLOBL signMask<>(SB), RODATA|NOPTR, $4
DATA minNormal<>+0(SB)/4, $0x00800000
GLOBL minNormal<>(SB), RODATA|NOPTR, $4

// func momentumAVX2(w, grad, v *float32, n int, lr, momentum, weightDecay float32)
TEXT ·momentumAVX2(SB), NOSPLIT, $0-44
	MOVQ         w+0(FP), DI
	MOVQ         grad+8(FP), SI
	MOVQ         v+16(FP), DX
	MOVQ         n+24(FP), CX
	VBROADCASTSS lr+32(FP), Y10
	VBROADCASTSS momentum+36(FP), Y11
	VBROADCASTSS weightDecay+40(FP), Y12
	VBROADCASTSS absMask<>(SB), Y13
	VBROADCASTSS signMask<>(SB), Y14
	VBROADCASTSS minNormal<>(SB), Y15

momentumLoop:
	VMOVUPS (DI), Y0     // w
	VMOVUPS (SI), Y1     // g
	VMOVUPS (DX), Y2     // v
	VMULPS  Y12, Y0, Y3  // weightDecay·w
	VADDPS  Y3, Y1, Y3   // g + weightDecay·w
	VMULPS  Y11, Y2, Y4  // momentum·v
	VADDPS  Y3, Y4, Y4   // momentum·v + (g + weightDecay·w)

	// Flush subnormals: keep the sign and, unless |x| < the smallest
	// normal (NaN is not), the rest.
	VANDPS  Y13, Y4, Y5
	VCMPPS  $0x05, Y15, Y5, Y6 // NLT_US: !(|x| < minNormal)
	VORPS   Y14, Y6, Y6
	VANDPS  Y6, Y4, Y4
	VMOVUPS Y4, (DX)

	VMULPS  Y10, Y4, Y7 // lr·v, flushed the same way
	VANDPS  Y13, Y7, Y5
	VCMPPS  $0x05, Y15, Y5, Y6
	VORPS   Y14, Y6, Y6
	VANDPS  Y6, Y7, Y7
	VSUBPS  Y7, Y0, Y0  // w − lr·v
	VMOVUPS Y0, (DI)

	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	SUBQ $8, CX
	JNZ  momentumLoop
	VZEROUPPER
	RET

// func reluAVX2(y, x *float32, n int)
TEXT ·reluAVX2(SB), NOSPLIT, $0-24
	MOVQ   y+0(FP), DI
	MOVQ   x+8(FP), SI
	MOVQ   n+16(FP), CX
	VXORPS Y15, Y15, Y15

reluLoop:
	VMOVUPS (SI), Y0
	VCMPPS  $0x06, Y15, Y0, Y1 // NLE_US: !(x <= 0), so x > 0 or NaN
	VANDPS  Y1, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	SUBQ    $8, CX
	JNZ     reluLoop
	VZEROUPPER
	RET

// func reluBackwardAVX2(dx, dy, y *float32, n int)
TEXT ·reluBackwardAVX2(SB), NOSPLIT, $0-32
	MOVQ   dx+0(FP), DI
	MOVQ   dy+8(FP), SI
	MOVQ   y+16(FP), DX
	MOVQ   n+24(FP), CX
	VXORPS Y15, Y15, Y15

reluBackwardLoop:
	VMOVUPS (DX), Y0
	VCMPPS  $0x1e, Y15, Y0, Y1 // GT_OQ: y > 0, not NaN
	VANDPS  (SI), Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	ADDQ    $32, DX
	SUBQ    $8, CX
	JNZ     reluBackwardLoop
	VZEROUPPER
	RET

// func addAVX2(dst, src *float32, n int)
TEXT ·addAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

addLoop:
	VMOVUPS (DI), Y0
	VADDPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	SUBQ    $8, CX
	JNZ     addLoop
	VZEROUPPER
	RET

// func normalizeAVX2(dst *float32, src *uint8, n int, scale, shift float32)
TEXT ·normalizeAVX2(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS scale+24(FP), Y14
	VBROADCASTSS shift+28(FP), Y15

normalizeLoop:
	VPMOVZXBD (SI), Y0 // eight bytes to eight int32
	VCVTDQ2PS Y0, Y0
	VMULPS    Y14, Y0, Y0
	VADDPS    Y15, Y0, Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $32, DI
	ADDQ      $8, SI
	SUBQ      $8, CX
	JNZ       normalizeLoop
	VZEROUPPER
	RET
