/* AVX2 + FMA micro-kernels: 6 x 16 float32 and 6 x 8 float64 tiles, 12 ymm accumulators (two
 * vectors of B and one broadcast of A in the remaining 4 of 16 registers). */
#include <immintrin.h>

#include "gemm_kernel.h"
#include "gemm_transpose.h"

#define ISA avx2
#define MR 6

/* 6 rows of A (row stride lda) into a 6-row micro-panel: 6 x 8 blocks transposed in registers;
 * each 8-wide store overlaps the next group's first 2 (rewritten next; the last spills into the
 * slack). */
static void pack_a_n6_f32(float *PN_RESTRICT dst, const float *PN_RESTRICT src, pn_size lda,
                          pn_size kc) {
    pn_size p = 0;
    for (; p + 8 <= kc; p += 8) transpose8x8_ps(dst + p * 6, 6, src + p, lda, 6);
    for (; p < kc; p++)
        for (int i = 0; i < 6; i++) dst[p * 6 + i] = src[i * lda + p];
}

/* op(A) = stored^T: 6 contiguous values per k step. */
static void pack_a_t6_f32(float *PN_RESTRICT dst, const float *PN_RESTRICT src, pn_size lda,
                          pn_size kc) {
    const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    for (pn_size p = 0; p < kc; p++)
        _mm256_storeu_ps(dst + p * 6, _mm256_maskload_ps(src + p * lda, six));
}

#define PACK_A_N_FULL(dst, src, lda, kc) pack_a_n6_f32(dst, src, lda, kc)
#define PACK_A_T_FULL(dst, src, lda, kc) pack_a_t6_f32(dst, src, lda, kc)
#define PACK_B_T_FULL(dst, src, ldb, kc) pack_rows_t_ps(dst, src, ldb, kc, 16)

/* ---- float32 ---- */
#define T float
#define SUF f32
#define VT __m256
#define VL 8
#define MC 144
#define KC 320
#define NC 4080
#define MASK_T __m256i
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(x) _mm256_set1_ps(x)
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define V_BCAST(p) _mm256_broadcast_ss(p)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_RELU(v) _mm256_max_ps(_mm256_setzero_ps(), v) /* returns v when v is NaN */
#define V_LEAKY(v, av) \
    _mm256_blendv_ps(_mm256_mul_ps(av, v), v, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ))
#define V_MASK(n) _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define V_LOADM(p, m) _mm256_maskload_ps(p, m)
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

static void pack_a_n6_f64(double *PN_RESTRICT dst, const double *PN_RESTRICT src, pn_size lda,
                          pn_size kc) {
    pn_size p = 0;
    for (; p + 4 <= kc; p += 4) {
        transpose4x4_pd(dst + p * 6, 6, src + p, lda);
        __m256d r4 = _mm256_loadu_pd(src + 4 * lda + p), r5 = _mm256_loadu_pd(src + 5 * lda + p);
        __m256d lo = _mm256_unpacklo_pd(r4, r5), hi = _mm256_unpackhi_pd(r4, r5);
        /* lo = (r4[0], r5[0], r4[2], r5[2]), hi = (r4[1], r5[1], r4[3], r5[3]) */
        __m128d tail[4] = {_mm256_castpd256_pd128(lo), _mm256_castpd256_pd128(hi),
                           _mm256_extractf128_pd(lo, 1), _mm256_extractf128_pd(hi, 1)};
        for (int q = 0; q < 4; q++) _mm_storeu_pd(dst + (p + q) * 6 + 4, tail[q]);
    }
    for (; p < kc; p++)
        for (int i = 0; i < 6; i++) dst[p * 6 + i] = src[i * lda + p];
}

static void pack_a_t6_f64(double *PN_RESTRICT dst, const double *PN_RESTRICT src, pn_size lda,
                          pn_size kc) {
    for (pn_size p = 0; p < kc; p++) {
        _mm256_storeu_pd(dst + p * 6, _mm256_loadu_pd(src + p * lda));
        _mm_storeu_pd(dst + p * 6 + 4, _mm_loadu_pd(src + p * lda + 4));
    }
}

#undef PACK_A_N_FULL
#undef PACK_A_T_FULL
#undef PACK_B_T_FULL
#define PACK_A_N_FULL(dst, src, lda, kc) pack_a_n6_f64(dst, src, lda, kc)
#define PACK_A_T_FULL(dst, src, lda, kc) pack_a_t6_f64(dst, src, lda, kc)
#define PACK_B_T_FULL(dst, src, ldb, kc) pack_rows_t_pd(dst, src, ldb, kc, 8)

/* ---- float64 ---- */
#define T double
#define SUF f64
#define VT __m256d
#define VL 4
#define MC 72
#define KC 256
#define NC 4080
#define MASK_T __m256i
#define V_ZERO() _mm256_setzero_pd()
#define V_SET1(x) _mm256_set1_pd(x)
#define V_LOAD(p) _mm256_loadu_pd(p)
#define V_STORE(p, v) _mm256_storeu_pd(p, v)
#define V_BCAST(p) _mm256_broadcast_sd(p)
#define V_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define V_ADD(a, b) _mm256_add_pd(a, b)
#define V_RELU(v) _mm256_max_pd(_mm256_setzero_pd(), v)
#define V_LEAKY(v, av) \
    _mm256_blendv_pd(_mm256_mul_pd(av, v), v, _mm256_cmp_pd(v, _mm256_setzero_pd(), _CMP_GE_OQ))
#define V_MASK(n) _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3))
#define V_LOADM(p, m) _mm256_maskload_pd(p, m)
#include "gemm_ukr_simd.h"
