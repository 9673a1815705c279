/* AVX-512 micro-kernels: 8 x 32 float32 and 8 x 16 float64 tiles, 16 zmm accumulators (of 32
 * registers); masked tails need no staging. */
#include <immintrin.h>

#include "gemm_kernel.h"
#include "gemm_transpose.h"

#define ISA avx512
/* 8 rows, not 12: on Zen 4 (512-bit ops on 256-bit units) the 8 x 32 float32 tile ran the
 * MLP's products 3-16% faster than 12 x 32 (32 x 784 x 256: 97 -> 112 GFLOP/s of 117; the
 * batch-32 epoch 0.92x the time), the 8 x 16 float64 tile 4-15%; 16 accumulators still cover
 * two FMA pipes of 4-cycle latency. */
#define MR 8

/* ---- packing of full micro-panels (the formats of gemm_kernel.h), vectorised: a transposed
 * operand goes through the 256-bit block transposes of gemm_transpose.h, where a 16 x 16 zmm
 * transpose took four 512-bit shuffles per 16 floats (Zen 4 runs those at half rate).
 * Packing a 1024 x 1024 W^T, L3 to L2: 11.5 -> 20 GB/s, from L2 17 -> 39 GB/s; the dx
 * product 16 x 1024 x 1024 0.69x the time, 128 x 1024 x 1024 0.96x (Zen 4, both builds at
 * once on the two cores). */

/* op(A) = stored^T: 8 contiguous values per k step. */
static void pack_a_t8_f32(float *PN_RESTRICT dst, const float *PN_RESTRICT src, pn_size lda,
                          pn_size kc) {
    for (pn_size p = 0; p < kc; p++)
        _mm256_storeu_ps(dst + p * 8, _mm256_loadu_ps(src + p * lda));
}
#define PACK_A_N_FULL(dst, src, lda, kc) pack_rows_t_ps(dst, src, lda, kc, 8)
#define PACK_A_T_FULL(dst, src, lda, kc) pack_a_t8_f32(dst, src, lda, kc)
#define PACK_B_T_FULL(dst, src, ldb, kc) pack_rows_t_ps(dst, src, ldb, kc, 32)

/* ---- float32 ---- */
#define T float
#define SUF f32
#define VT __m512
#define VL 16
#define MC 144
#define KC 256
#define NC 4096
#define MASK_T __mmask16
#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(x) _mm512_set1_ps(x)
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_BCAST(p) _mm512_set1_ps(*(p))
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_RELU(v) _mm512_max_ps(_mm512_setzero_ps(), v) /* returns v when v is NaN */
#define V_LEAKY(v, av)                                                                     \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GE_OQ),           \
                         _mm512_mul_ps(av, v), v)
#define V_MASK(n) ((__mmask16)((1u << (n)) - 1u))
#define V_LOADM(p, m) _mm512_maskz_loadu_ps(m, p)
#include "gemm_ukr_simd.h"
#undef T
#undef SUF
#undef VT
#undef VL
#undef MC
#undef KC
#undef NC
#undef MASK_T
#undef V_ZERO
#undef V_SET1
#undef V_LOAD
#undef V_STORE
#undef V_BCAST
#undef V_FMA
#undef V_ADD
#undef V_RELU
#undef V_LEAKY
#undef V_MASK
#undef V_LOADM

static void pack_a_t8_f64(double *PN_RESTRICT dst, const double *PN_RESTRICT src, pn_size lda,
                          pn_size kc) {
    for (pn_size p = 0; p < kc; p++) _mm512_storeu_pd(dst + p * 8, _mm512_loadu_pd(src + p * lda));
}
#undef PACK_A_N_FULL
#undef PACK_A_T_FULL
#undef PACK_B_T_FULL
#define PACK_A_N_FULL(dst, src, lda, kc) pack_rows_t_pd(dst, src, lda, kc, 8)
#define PACK_A_T_FULL(dst, src, lda, kc) pack_a_t8_f64(dst, src, lda, kc)
#define PACK_B_T_FULL(dst, src, ldb, kc) pack_rows_t_pd(dst, src, ldb, kc, 16)

/* ---- float64 ---- */
#define T double
#define SUF f64
#define VT __m512d
#define VL 8
#define MC 72
#define KC 256
#define NC 4096
#define MASK_T __mmask8
#define V_ZERO() _mm512_setzero_pd()
#define V_SET1(x) _mm512_set1_pd(x)
#define V_LOAD(p) _mm512_loadu_pd(p)
#define V_STORE(p, v) _mm512_storeu_pd(p, v)
#define V_BCAST(p) _mm512_set1_pd(*(p))
#define V_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define V_ADD(a, b) _mm512_add_pd(a, b)
#define V_RELU(v) _mm512_max_pd(_mm512_setzero_pd(), v)
#define V_LEAKY(v, av)                                                                     \
    _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_GE_OQ),           \
                         _mm512_mul_pd(av, v), v)
#define V_MASK(n) ((__mmask8)((1u << (n)) - 1u))
#define V_LOADM(p, m) _mm512_maskz_loadu_pd(m, p)
#include "gemm_ukr_simd.h"
