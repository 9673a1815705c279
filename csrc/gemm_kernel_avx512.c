/* AVX-512 micro-kernels: 12 x 32 float32 and 12 x 16 float64 tiles, 24 zmm accumulators (of 32
 * registers); masked tails need no staging. */
#include <immintrin.h>

#include "gemm_kernel.h"

#define ISA avx512
#define MR 12

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
