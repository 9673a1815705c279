/* AVX2 + FMA micro-kernels: 6 x 16 float32 and 6 x 8 float64 tiles, 12 ymm accumulators (two
 * vectors of B and one broadcast of A in the remaining 4 of 16 registers). */
#include <immintrin.h>

#include "gemm_kernel.h"

#define ISA avx2
#define MR 6

/* ---- float32 ---- */
#define T float
#define SUF f32
#define VT __m256
#define VL 8
#define MC 144
#define KC 256
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
