/* Small in-register transposes for the GEMM's packing (included by the AVX2 and AVX-512
 * kernel files; AVX only). Each 256-bit register is loaded as the 128-bit halves of two rows,
 * so the load does the lane-crossing step and two in-lane shuffles per register remain (the
 * classic 8 x 8 took three, one of them lane-crossing). */
#ifndef PYNN_GEMM_TRANSPOSE_H
#define PYNN_GEMM_TRANSPOSE_H

#include <immintrin.h>

#include "isa.h"

/* dst[q * ldd + i] = src[i * lds + q] for q < 8, i < 8; rows i >= `rows` (6 or 8) are not
 * read and come out 0. */
static inline __attribute__((always_inline)) void transpose8x8_ps(float *PN_RESTRICT dst,
                                                                  pn_size ldd,
                                                                  const float *PN_RESTRICT src,
                                                                  pn_size lds, int rows) {
    __m256 r[8]; /* r[i], r[4 + i]: columns 0-3, 4-7 of rows i (low lane) and i + 4 (high) */
    for (int i = 0; i < 4; i++)
        for (int h = 0; h < 2; h++) {
            const __m256 lo = _mm256_castps128_ps256(_mm_loadu_ps(src + i * lds + 4 * h));
            const __m128 hi = i + 4 < rows ? _mm_loadu_ps(src + (i + 4) * lds + 4 * h)
                                           : _mm_setzero_ps();
            r[4 * h + i] = _mm256_insertf128_ps(lo, hi, 1);
        }
    for (int h = 0; h < 2; h++) {
        const __m256 *q = r + 4 * h;
        __m256 t0 = _mm256_unpacklo_ps(q[0], q[1]), t1 = _mm256_unpackhi_ps(q[0], q[1]);
        __m256 t2 = _mm256_unpacklo_ps(q[2], q[3]), t3 = _mm256_unpackhi_ps(q[2], q[3]);
        _mm256_storeu_ps(dst + (4 * h + 0) * ldd, _mm256_shuffle_ps(t0, t2, 0x44));
        _mm256_storeu_ps(dst + (4 * h + 1) * ldd, _mm256_shuffle_ps(t0, t2, 0xEE));
        _mm256_storeu_ps(dst + (4 * h + 2) * ldd, _mm256_shuffle_ps(t1, t3, 0x44));
        _mm256_storeu_ps(dst + (4 * h + 3) * ldd, _mm256_shuffle_ps(t1, t3, 0xEE));
    }
}

/* dst[q * ldd + i] = src[i * lds + q] for q < 4, i < 4. */
static inline __attribute__((always_inline)) void transpose4x4_pd(double *PN_RESTRICT dst,
                                                                  pn_size ldd,
                                                                  const double *PN_RESTRICT src,
                                                                  pn_size lds) {
    __m256d r[4]; /* r[i], r[2 + i]: columns 0-1, 2-3 of rows i (low lane) and i + 2 (high) */
    for (int i = 0; i < 2; i++)
        for (int h = 0; h < 2; h++)
            r[2 * h + i] = _mm256_insertf128_pd(
                _mm256_castpd128_pd256(_mm_loadu_pd(src + i * lds + 2 * h)),
                _mm_loadu_pd(src + (i + 2) * lds + 2 * h), 1);
    for (int h = 0; h < 2; h++) {
        _mm256_storeu_pd(dst + (2 * h + 0) * ldd, _mm256_unpacklo_pd(r[2 * h], r[2 * h + 1]));
        _mm256_storeu_pd(dst + (2 * h + 1) * ldd, _mm256_unpackhi_pd(r[2 * h], r[2 * h + 1]));
    }
}

/* dst[p * w + j] = src[j * lds + p] for j < w, p < kc: w stored rows (contiguous in k) into a
 * w-wide micro-panel (a transposed B panel, or a row-major A panel of w rows). Eight rows at a
 * time along all of kc: eight read streams, not w (rows 4 KiB apart share L1 sets; 1.35x on a
 * 1024 x 1024 W^T over k outer). w: a multiple of 8, a constant at each (inlined) call. */
static inline __attribute__((always_inline)) void pack_rows_t_ps(float *PN_RESTRICT dst,
                                                                 const float *PN_RESTRICT src,
                                                                 pn_size lds, pn_size kc,
                                                                 int w) {
    const pn_size k8 = kc / 8 * 8;
    for (int j = 0; j < w; j += 8)
        for (pn_size p = 0; p < k8; p += 8)
            transpose8x8_ps(dst + p * w + j, w, src + j * lds + p, lds, 8);
    for (pn_size p = k8; p < kc; p++)
        for (int j = 0; j < w; j++) dst[p * w + j] = src[j * lds + p];
}

/* As pack_rows_t_ps for doubles, four rows at a time; w: a multiple of 4. */
static inline __attribute__((always_inline)) void pack_rows_t_pd(double *PN_RESTRICT dst,
                                                                 const double *PN_RESTRICT src,
                                                                 pn_size lds, pn_size kc,
                                                                 int w) {
    const pn_size k4 = kc / 4 * 4;
    for (int j = 0; j < w; j += 4)
        for (pn_size p = 0; p < k4; p += 4)
            transpose4x4_pd(dst + p * w + j, w, src + j * lds + p, lds);
    for (pn_size p = k4; p < kc; p++)
        for (int j = 0; j < w; j++) dst[p * w + j] = src[j * lds + p];
}

#endif /* PYNN_GEMM_TRANSPOSE_H */
