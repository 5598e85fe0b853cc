//go:build amd64 && !purego

#include "textflag.h"

// func sgemmKernel6x16(k int, a, b, c unsafe.Pointer, ldc int, alpha, beta float32)
//
// For the packed slivers a (k×6) and b (k×16), and the row-major c with ldc
// floats per row: c[i][j] = alpha·Σ_p a[p·6+i]·b[p·16+j] + beta·c[i][j],
// c not read when beta is 0. k ≥ 1. Y0–Y11 accumulate the tile, two per
// row; Y12, Y13 hold a row of b; Y14, Y15 a broadcast element of a.
TEXT ·sgemmKernel6x16(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

loop:
	VMOVUPS      (DI), Y12
	VMOVUPS      32(DI), Y13
	VBROADCASTSS (SI), Y14
	VFMADD231PS  Y12, Y14, Y0
	VFMADD231PS  Y13, Y14, Y1
	VBROADCASTSS 4(SI), Y15
	VFMADD231PS  Y12, Y15, Y2
	VFMADD231PS  Y13, Y15, Y3
	VBROADCASTSS 8(SI), Y14
	VFMADD231PS  Y12, Y14, Y4
	VFMADD231PS  Y13, Y14, Y5
	VBROADCASTSS 12(SI), Y15
	VFMADD231PS  Y12, Y15, Y6
	VFMADD231PS  Y13, Y15, Y7
	VBROADCASTSS 16(SI), Y14
	VFMADD231PS  Y12, Y14, Y8
	VFMADD231PS  Y13, Y14, Y9
	VBROADCASTSS 20(SI), Y15
	VFMADD231PS  Y12, Y15, Y10
	VFMADD231PS  Y13, Y15, Y11
	ADDQ         $24, SI
	ADDQ         $64, DI
	DECQ         CX
	JNZ          loop

	// Scale by alpha.
	VBROADCASTSS alpha+40(FP), Y14
	VMULPS       Y14, Y0, Y0
	VMULPS       Y14, Y1, Y1
	VMULPS       Y14, Y2, Y2
	VMULPS       Y14, Y3, Y3
	VMULPS       Y14, Y4, Y4
	VMULPS       Y14, Y5, Y5
	VMULPS       Y14, Y6, Y6
	VMULPS       Y14, Y7, Y7
	VMULPS       Y14, Y8, Y8
	VMULPS       Y14, Y9, Y9
	VMULPS       Y14, Y10, Y10
	VMULPS       Y14, Y11, Y11

	// beta == 0 (and not NaN): store without reading c.
	VBROADCASTSS beta+44(FP), Y15
	VXORPS       X13, X13, X13
	VUCOMISS     X13, X15
	JNE          withbeta
	JPS          withbeta

	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	ADDQ    R8, DX
	VMOVUPS Y2, (DX)
	VMOVUPS Y3, 32(DX)
	ADDQ    R8, DX
	VMOVUPS Y4, (DX)
	VMOVUPS Y5, 32(DX)
	ADDQ    R8, DX
	VMOVUPS Y6, (DX)
	VMOVUPS Y7, 32(DX)
	ADDQ    R8, DX
	VMOVUPS Y8, (DX)
	VMOVUPS Y9, 32(DX)
	ADDQ    R8, DX
	VMOVUPS Y10, (DX)
	VMOVUPS Y11, 32(DX)
	VZEROUPPER
	RET

withbeta:
	VFMADD231PS (DX), Y15, Y0
	VFMADD231PS 32(DX), Y15, Y1
	VMOVUPS     Y0, (DX)
	VMOVUPS     Y1, 32(DX)
	ADDQ        R8, DX
	VFMADD231PS (DX), Y15, Y2
	VFMADD231PS 32(DX), Y15, Y3
	VMOVUPS     Y2, (DX)
	VMOVUPS     Y3, 32(DX)
	ADDQ        R8, DX
	VFMADD231PS (DX), Y15, Y4
	VFMADD231PS 32(DX), Y15, Y5
	VMOVUPS     Y4, (DX)
	VMOVUPS     Y5, 32(DX)
	ADDQ        R8, DX
	VFMADD231PS (DX), Y15, Y6
	VFMADD231PS 32(DX), Y15, Y7
	VMOVUPS     Y6, (DX)
	VMOVUPS     Y7, 32(DX)
	ADDQ        R8, DX
	VFMADD231PS (DX), Y15, Y8
	VFMADD231PS 32(DX), Y15, Y9
	VMOVUPS     Y8, (DX)
	VMOVUPS     Y9, 32(DX)
	ADDQ        R8, DX
	VFMADD231PS (DX), Y15, Y10
	VFMADD231PS 32(DX), Y15, Y11
	VMOVUPS     Y10, (DX)
	VMOVUPS     Y11, 32(DX)
	VZEROUPPER
	RET
