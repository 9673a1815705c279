/* AVX-512 micro-kernels: 8 x 32 float32 and 8 x 16 float64 tiles, 16 zmm accumulators (of 32
 * registers); masked tails need no staging. */
#include <immintrin.h>

#include "gemm_kernel.h"

#define ISA avx512
/* 8 rows, not 12: on Zen 4 (512-bit ops on 256-bit units) the 8 x 32 float32 tile ran the
 * MLP's products 3-16% faster than 12 x 32 (32 x 784 x 256: 97 -> 112 GFLOP/s of 117; the
 * batch-32 epoch 0.92x the time), the 8 x 16 float64 tile 4-15%; 16 accumulators still cover
 * two FMA pipes of 4-cycle latency. */
#define MR 8

/* ---- packing of full micro-panels (the formats of gemm_kernel.h), vectorised: a transposed
 * operand goes through in-register 16 x 16 (float32) or 8 x 8 (float64) transposes, where the
 * generic loop moved one element at a time (the dx product's B, dz.W^T, paid ~20% for it). */

/* 16 x 16 transpose: r[q] becomes column q. Two in-lane stages, then two across 128-bit lanes. */
static inline __attribute__((always_inline)) void transpose16_ps(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* r[i + j], lane l: rows i..i+3 of column 4l + j */
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int j = 0; j < 4; j++) {
        __m512 u0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        __m512 u1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);
        __m512 u2 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        __m512 u3 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
        t[j] = _mm512_shuffle_f32x4(u0, u2, 0x88);
        t[8 + j] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
        t[4 + j] = _mm512_shuffle_f32x4(u1, u3, 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
    }
    for (int q = 0; q < 16; q++) r[q] = t[q];
}

/* op(B) = stored^T: 32 stored rows (contiguous in k) into a 32-column micro-panel. */
static void pack_b_t32_f32(float *PN_RESTRICT dst, const float *PN_RESTRICT src, pn_size ldb,
                           pn_size kc) {
    pn_size p = 0;
    for (; p + 16 <= kc; p += 16)
        for (int h = 0; h < 2; h++) {
            __m512 r[16];
            for (int j = 0; j < 16; j++) r[j] = _mm512_loadu_ps(src + (16 * h + j) * ldb + p);
            transpose16_ps(r);
            for (int q = 0; q < 16; q++) _mm512_storeu_ps(dst + (p + q) * 32 + 16 * h, r[q]);
        }
    for (; p < kc; p++)
        for (int j = 0; j < 32; j++) dst[p * 32 + j] = src[j * ldb + p];
}

/* 8 rows of A (row stride lda) into an 8-row micro-panel, 16 k at a time. */
static void pack_a_n8_f32(float *PN_RESTRICT dst, const float *PN_RESTRICT src, pn_size lda,
                          pn_size kc) {
    pn_size p = 0;
    for (; p + 16 <= kc; p += 16) {
        __m512 r[16];
        for (int i = 0; i < 8; i++) r[i] = _mm512_loadu_ps(src + i * lda + p);
        for (int i = 8; i < 16; i++) r[i] = _mm512_setzero_ps();
        transpose16_ps(r);
        for (int q = 0; q < 16; q++) _mm512_mask_storeu_ps(dst + (p + q) * 8, 0x00FF, r[q]);
    }
    for (; p < kc; p++)
        for (int i = 0; i < 8; i++) dst[p * 8 + i] = src[i * lda + p];
}

/* op(A) = stored^T: 8 contiguous values per k step. */
static void pack_a_t8_f32(float *PN_RESTRICT dst, const float *PN_RESTRICT src, pn_size lda,
                          pn_size kc) {
    for (pn_size p = 0; p < kc; p++)
        _mm256_storeu_ps(dst + p * 8, _mm256_loadu_ps(src + p * lda));
}
#define PACK_A_N_FULL(dst, src, lda, kc) pack_a_n8_f32(dst, src, lda, kc)
#define PACK_A_T_FULL(dst, src, lda, kc) pack_a_t8_f32(dst, src, lda, kc)
#define PACK_B_T_FULL(dst, src, ldb, kc) pack_b_t32_f32(dst, src, ldb, kc)

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

/* 8 x 8 transpose: r[q] becomes column q. */
static inline __attribute__((always_inline)) void transpose8_pd(__m512d r[8]) {
    __m512d t[8];
    for (int i = 0; i < 8; i += 2) { /* t[i + h], lane l: rows i, i+1 of column 2l + h */
        t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
    }
    for (int h = 0; h < 2; h++) {
        __m512d u0 = _mm512_shuffle_f64x2(t[h], t[2 + h], 0x88);
        __m512d u1 = _mm512_shuffle_f64x2(t[h], t[2 + h], 0xDD);
        __m512d u2 = _mm512_shuffle_f64x2(t[4 + h], t[6 + h], 0x88);
        __m512d u3 = _mm512_shuffle_f64x2(t[4 + h], t[6 + h], 0xDD);
        r[h] = _mm512_shuffle_f64x2(u0, u2, 0x88);
        r[4 + h] = _mm512_shuffle_f64x2(u0, u2, 0xDD);
        r[2 + h] = _mm512_shuffle_f64x2(u1, u3, 0x88);
        r[6 + h] = _mm512_shuffle_f64x2(u1, u3, 0xDD);
    }
}



static void pack_b_t16_f64(double *PN_RESTRICT dst, const double *PN_RESTRICT src, pn_size ldb,
                           pn_size kc) {
    pn_size p = 0;
    for (; p + 8 <= kc; p += 8)
        for (int h = 0; h < 2; h++) {
            __m512d r[8];
            for (int j = 0; j < 8; j++) r[j] = _mm512_loadu_pd(src + (8 * h + j) * ldb + p);
            transpose8_pd(r);
            for (int q = 0; q < 8; q++) _mm512_storeu_pd(dst + (p + q) * 16 + 8 * h, r[q]);
        }
    for (; p < kc; p++)
        for (int j = 0; j < 16; j++) dst[p * 16 + j] = src[j * ldb + p];
}

/* 8 rows of A into an 8-row micro-panel, 8 k at a time. */
static void pack_a_n8_f64(double *PN_RESTRICT dst, const double *PN_RESTRICT src, pn_size lda,
                          pn_size kc) {
    pn_size p = 0;
    for (; p + 8 <= kc; p += 8) {
        __m512d r[8];
        for (int i = 0; i < 8; i++) r[i] = _mm512_loadu_pd(src + i * lda + p);
        transpose8_pd(r);
        for (int q = 0; q < 8; q++) _mm512_storeu_pd(dst + (p + q) * 8, r[q]);
    }
    for (; p < kc; p++)
        for (int i = 0; i < 8; i++) dst[p * 8 + i] = src[i * lda + p];
}

static void pack_a_t8_f64(double *PN_RESTRICT dst, const double *PN_RESTRICT src, pn_size lda,
                          pn_size kc) {
    for (pn_size p = 0; p < kc; p++) _mm512_storeu_pd(dst + p * 8, _mm512_loadu_pd(src + p * lda));
}
#undef PACK_A_N_FULL
#undef PACK_A_T_FULL
#undef PACK_B_T_FULL
#define PACK_A_N_FULL(dst, src, lda, kc) pack_a_n8_f64(dst, src, lda, kc)
#define PACK_A_T_FULL(dst, src, lda, kc) pack_a_t8_f64(dst, src, lda, kc)
#define PACK_B_T_FULL(dst, src, ldb, kc) pack_b_t16_f64(dst, src, ldb, kc)

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
