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

DATA poolLanes<>+0(SB)/4, $0
DATA poolLanes<>+4(SB)/4, $2
DATA poolLanes<>+8(SB)/4, $4
DATA poolLanes<>+12(SB)/4, $6
DATA poolLanes<>+16(SB)/4, $8
DATA poolLanes<>+20(SB)/4, $10
DATA poolLanes<>+24(SB)/4, $12
DATA poolLanes<>+28(SB)/4, $14
GLOBL poolLanes<>(SB), RODATA|NOPTR, $32
DATA poolStep<>+0(SB)/4, $16
GLOBL poolStep<>(SB), RODATA|NOPTR, $4
DATA intOne<>+0(SB)/4, $1
GLOBL intOne<>(SB), RODATA|NOPTR, $4

// func maxPool2x2AVX2(y *float32, arg *int32, r0, r1 *float32, n int, at, wd int32) int
//
// Eight windows at a time: the even and odd columns of each row come apart
// with VSHUFPS, in the window order 0 1 4 5 2 3 6 7, which VPERMPD puts
// right at the end. The best so far is replaced only by a strictly greater
// value (GT_OQ), in window order, so the first of equals wins, −0 equal to
// +0; a block with a NaN ends the loop before it is written.
TEXT ·maxPool2x2AVX2(SB), NOSPLIT, $0-56
	MOVQ         y+0(FP), DI
	MOVQ         arg+8(FP), R8
	MOVQ         r0+16(FP), SI
	MOVQ         r1+24(FP), DX
	MOVQ         n+32(FP), CX
	MOVL         at+40(FP), AX
	VMOVD        AX, X12
	VPBROADCASTD X12, Y12
	VPADDD       poolLanes<>(SB), Y12, Y12 // at + 2x for the block's windows
	VPBROADCASTD intOne<>(SB), Y13         // offset of r0[2x+1]
	MOVL         wd+44(FP), AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14                  // of r1[2x]
	VPADDD       Y13, Y14, Y15             // of r1[2x+1]
	XORQ         AX, AX

poolLoop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS (DX), Y2
	VMOVUPS 32(DX), Y3
	VCMPPS  $3, Y1, Y0, Y4 // UNORD_Q: a NaN in either
	VCMPPS  $3, Y3, Y2, Y5
	VORPS   Y5, Y4, Y4
	VPTEST  Y4, Y4
	JNE     poolDone

	VSHUFPS $0x88, Y1, Y0, Y6 // r0[2x]
	VSHUFPS $0xdd, Y1, Y0, Y7 // r0[2x+1]
	VSHUFPS $0x88, Y3, Y2, Y8 // r1[2x]
	VSHUFPS $0xdd, Y3, Y2, Y9 // r1[2x+1]

	VCMPPS    $0x1e, Y6, Y7, Y10 // GT_OQ: r0[2x+1] > best
	VBLENDVPS Y10, Y7, Y6, Y6
	VANDPS    Y10, Y13, Y11
	VCMPPS    $0x1e, Y6, Y8, Y10
	VBLENDVPS Y10, Y8, Y6, Y6
	VBLENDVPS Y10, Y14, Y11, Y11
	VCMPPS    $0x1e, Y6, Y9, Y10
	VBLENDVPS Y10, Y9, Y6, Y6
	VBLENDVPS Y10, Y15, Y11, Y11

	VPERMPD $0xd8, Y6, Y6
	VPERMQ  $0xd8, Y11, Y11
	VPADDD  Y12, Y11, Y11
	VMOVUPS Y6, (DI)
	VMOVDQU Y11, (R8)

	VPBROADCASTD poolStep<>(SB), Y4
	VPADDD       Y4, Y12, Y12
	ADDQ         $64, SI
	ADDQ         $64, DX
	ADDQ         $32, DI
	ADDQ         $32, R8
	ADDQ         $8, AX
	CMPQ         AX, CX
	JLT          poolLoop

poolDone:
	MOVQ AX, ret+48(FP)
	VZEROUPPER
	RET

// func addRowsAVX2(dst *float32, dstStride int, src *float32, srcStride, rows, width int)
TEXT ·addRowsAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ dstStride+8(FP), R8
	MOVQ src+16(FP), SI
	MOVQ srcStride+24(FP), R9
	MOVQ rows+32(FP), R10
	MOVQ width+40(FP), R11
	SHLQ $2, R8
	SHLQ $2, R9
	MOVQ R11, CX
	SUBQ $8, CX // the last start of eight

addRowsRow:
	XORQ AX, AX
	CMPQ CX, $0
	JL   addRowsTail

addRowsEight:
	VMOVUPS (DI)(AX*4), Y0
	VADDPS  (SI)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLE     addRowsEight

addRowsTail:
	CMPQ   AX, R11
	JGE    addRowsNext
	VMOVSS (DI)(AX*4), X0
	VADDSS (SI)(AX*4), X0, X0
	VMOVSS X0, (DI)(AX*4)
	INCQ   AX
	JMP    addRowsTail

addRowsNext:
	ADDQ R8, DI
	ADDQ R9, SI
	DECQ R10
	JNZ  addRowsRow
	VZEROUPPER
	RET

// func copyRowsAVX2(dst *float32, dstStride int, src *float32, srcStride, rows, width int)
TEXT ·copyRowsAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ dstStride+8(FP), R8
	MOVQ src+16(FP), SI
	MOVQ srcStride+24(FP), R9
	MOVQ rows+32(FP), R10
	MOVQ width+40(FP), R11
	SHLQ $2, R8
	SHLQ $2, R9
	MOVQ R11, CX
	SUBQ $8, CX // the last start of eight

copyRowsRow:
	XORQ AX, AX
	CMPQ CX, $0
	JL   copyRowsTail

copyRowsEight:
	VMOVUPS (SI)(AX*4), Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLE     copyRowsEight

copyRowsTail:
	CMPQ   AX, R11
	JGE    copyRowsNext
	MOVL   (SI)(AX*4), BX
	MOVL   BX, (DI)(AX*4)
	INCQ   AX
	JMP    copyRowsTail

copyRowsNext:
	ADDQ R8, DI
	ADDQ R9, SI
	DECQ R10
	JNZ  copyRowsRow
	VZEROUPPER
	RET

// func maxPool2x2x4AVX(y *float32, arg *int32, r0, r1 *float32, at, wd int32) bool
//
// maxPool2x2AVX2's four-window block, for rows of 4 to 7 windows, in
// 128-bit registers, where VSHUFPS leaves the windows in order. It reports
// false, writing nothing, when the block holds a NaN.
TEXT ·maxPool2x2x4AVX(SB), NOSPLIT, $0-41
	MOVQ y+0(FP), DI
	MOVQ arg+8(FP), R8
	MOVQ r0+16(FP), SI
	MOVQ r1+24(FP), DX

	VMOVUPS (SI), X0
	VMOVUPS 16(SI), X1
	VMOVUPS (DX), X2
	VMOVUPS 16(DX), X3
	VCMPPS  $3, X1, X0, X4
	VCMPPS  $3, X3, X2, X5
	VORPS   X5, X4, X4
	VPTEST  X4, X4
	JNE     pool4NaN

	MOVL         at+32(FP), AX
	VMOVD        AX, X12
	VPBROADCASTD X12, X12
	VPADDD       poolLanes<>(SB), X12, X12 // at + 2x
	VPBROADCASTD intOne<>(SB), X13
	MOVL         wd+36(FP), AX
	VMOVD        AX, X14
	VPBROADCASTD X14, X14
	VPADDD       X13, X14, X15

	VSHUFPS   $0x88, X1, X0, X6 // r0[2x]
	VSHUFPS   $0xdd, X1, X0, X7 // r0[2x+1]
	VSHUFPS   $0x88, X3, X2, X8 // r1[2x]
	VSHUFPS   $0xdd, X3, X2, X9 // r1[2x+1]
	VCMPPS    $0x1e, X6, X7, X10
	VBLENDVPS X10, X7, X6, X6
	VANDPS    X10, X13, X11
	VCMPPS    $0x1e, X6, X8, X10
	VBLENDVPS X10, X8, X6, X6
	VBLENDVPS X10, X14, X11, X11
	VCMPPS    $0x1e, X6, X9, X10
	VBLENDVPS X10, X9, X6, X6
	VBLENDVPS X10, X15, X11, X11
	VPADDD    X12, X11, X11
	VMOVUPS   X6, (DI)
	VMOVDQU   X11, (R8)
	MOVB      $1, ret+40(FP)
	RET

pool4NaN:
	MOVB $0, ret+40(FP)
	RET
