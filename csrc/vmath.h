/* Branch-free scalar math that the compiler vectorises: written once, compiled once per ISA by the
 * csrc/multi/ kernels inside `#pragma omp simd` loops (AVX-512: 16 floats a vector, AVX2: 8,
 * generic x86-64: SSE2's 4; any other C11 compiler: plain scalar code).
 *
 * exp: x = n*ln2 + r with |r| <= ln2/2 (Cody-Waite: ln2 split in a high part exact in n*hi and a
 * low part), exp(r) by its Taylor polynomial (degree 7 for float: truncation 5e-9 relative;
 * degree 13 for double: 4e-18), times 2^n built in the exponent bits. 2^n is applied as two
 * factors 2^(n/2) * 2^(n - n/2) so that results overflow to inf and underflow through the
 * subnormals exactly as IEEE rounding says, from one rounding. Inputs are clamped just outside
 * the representable range first, so +-inf and +-1e4 give inf and 0; NaN compares false in both
 * clamps and propagates. No table, no branch, no libm call.
 *
 * Also log/log1p (atanh series after exponent extraction) and tanh (Taylor series near 0, exp
 * elsewhere), float and double. Measured accuracy, checked by tests/test_activation.py and
 * tests/test_loss.py: sigmoid and tanh within 4 ulp in float and double; log within a few ulp.
 *
 * Files that use these functions in vectorised loops include "vectorize.h" first (see there).
 */
#ifndef PYNN_VMATH_H
#define PYNN_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float pn_f32_from_bits(int32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}
static inline int32_t pn_f32_bits(float f) {
    int32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}
static inline double pn_f64_from_bits(int64_t b) {
    double f;
    memcpy(&f, &b, sizeof f);
    return f;
}
static inline int64_t pn_f64_bits(double f) {
    int64_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* exp(x) in float. */
static inline float pn_exp_f32(float x) {
    /* exp(-104) < half the smallest subnormal; exp(89) > FLT_MAX */
    float xc = x < -104.0f ? -104.0f : x;
    xc = xc > 89.0f ? 89.0f : xc;
    /* round x/ln2 to the nearest integer with the 1.5 * 2^23 shifter; its low bits are n */
    const float shifter = 12582912.0f;
    float shifted = xc * 1.44269504088896341f + shifter;
    int32_t n = pn_f32_bits(shifted) - pn_f32_bits(shifter);
    float fn = shifted - shifter;
    float r = xc - fn * 0.693145751953125f; /* ln2 high part: 16 bits, n*hi exact */
    r = r - fn * 1.428606765330187045e-06f; /* ln2 - high part */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t n1 = n >> 1, n2 = n - n1; /* each within [-75, 65]: both factors are normal */
    /* unsigned shifts: for a NaN x, n is garbage (p is NaN anyway) and a signed shift of a
     * negative value would be undefined behaviour (UBSan reports it) */
    return p * pn_f32_from_bits((int32_t)((uint32_t)(n1 + 127) << 23)) *
           pn_f32_from_bits((int32_t)((uint32_t)(n2 + 127) << 23));
}

/* exp(x) for x <= 0 where results below FLT_MIN may flush to 0 (tanh's exp(-2|x|): there 1 - e
 * and 1 + e round to 1 long before): one clamp and one scale factor fewer than pn_exp_f32. */
static inline float pn_expneg_f32(float x) {
    float xc = x < -87.0f ? -87.0f : x; /* exp(-87) > FLT_MIN: 2^n stays normal */
    const float shifter = 12582912.0f;
    float shifted = xc * 1.44269504088896341f + shifter;
    int32_t n = pn_f32_bits(shifted) - pn_f32_bits(shifter);
    float fn = shifted - shifter;
    float r = xc - fn * 0.693145751953125f;
    r = r - fn * 1.428606765330187045e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return p * pn_f32_from_bits((int32_t)((uint32_t)(n + 127) << 23)); /* unsigned: see above */
}

/* exp(x) in double. */
static inline double pn_exp_f64(double x) {
    double xc = x < -746.0 ? -746.0 : x;
    xc = xc > 710.0 ? 710.0 : xc;
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52 */
    double shifted = xc * 1.4426950408889634074 + shifter;
    int64_t n = pn_f64_bits(shifted) - pn_f64_bits(shifter);
    double fn = shifted - shifter;
    double r = xc - fn * 6.93147180369123816490e-01; /* ln2 high part: n*hi exact */
    r = r - fn * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0; /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t n1 = n >> 1, n2 = n - n1;
    return p * pn_f64_from_bits((int64_t)((uint64_t)(n1 + 1023) << 52)) *
           pn_f64_from_bits((int64_t)((uint64_t)(n2 + 1023) << 52));
}

/* log(x): x = 2^k * m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s) with s = (m-1)/(m+1),
 * |s| <= 0.1716, by its odd series (to s^11 for float: truncation 2e-9; s^23 for double: 7e-19),
 * plus k*ln2 in two parts. Subnormal x is scaled up first; 0 gives -inf, x < 0 and NaN give NaN,
 * +inf gives +inf, without a branch. */
static inline float pn_log_f32(float x) {
    int sub = x < 1.17549435e-38f;
    float xs = sub ? x * 33554432.0f : x; /* 2^25 */
    int32_t bits = pn_f32_bits(xs);
    int32_t k = ((bits >> 23) & 0xff) - 127 - (sub ? 25 : 0);
    float m = pn_f32_from_bits((bits & 0x007fffff) | 0x3f800000); /* [1, 2) */
    int big = m > 1.41421356f;
    m = big ? m * 0.5f : m;
    k = big ? k + 1 : k;
    float f = m - 1.0f; /* exact */
    float sr = f / (2.0f + f), z = sr * sr;
    float p = 1.0f / 11.0f;
    p = p * z + 1.0f / 9.0f;
    p = p * z + 1.0f / 7.0f;
    p = p * z + 1.0f / 5.0f;
    p = p * z + 1.0f / 3.0f;
    float logm = 2.0f * sr + 2.0f * sr * z * p;
    float fk = (float)k;
    float r = fk * 0.693145751953125f + (logm + fk * 1.428606765330187045e-06f);
    r = x == 0.0f ? -INFINITY : r;
    r = x < 0.0f ? NAN : r;
    r = x > 3.40282347e38f ? x : r; /* +inf */
    return x != x ? x : r;
}

static inline double pn_log_f64(double x) {
    int sub = x < 2.2250738585072014e-308;
    double xs = sub ? x * 18014398509481984.0 : x; /* 2^54 */
    int64_t bits = pn_f64_bits(xs);
    int64_t k = ((bits >> 52) & 0x7ff) - 1023 - (sub ? 54 : 0);
    double m = pn_f64_from_bits((bits & INT64_C(0x000fffffffffffff)) | INT64_C(0x3ff0000000000000));
    int big = m > 1.4142135623730951;
    m = big ? m * 0.5 : m;
    k = big ? k + 1 : k;
    double f = m - 1.0;
    double sr = f / (2.0 + f), z = sr * sr;
    double p = 1.0 / 23.0;
    p = p * z + 1.0 / 21.0;
    p = p * z + 1.0 / 19.0;
    p = p * z + 1.0 / 17.0;
    p = p * z + 1.0 / 15.0;
    p = p * z + 1.0 / 13.0;
    p = p * z + 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z + 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z + 1.0 / 3.0;
    double logm = 2.0 * sr + 2.0 * sr * z * p;
    double fk = (double)k;
    double r = fk * 6.93147180369123816490e-01 + (logm + fk * 1.90821492927058770002e-10);
    r = x == 0.0 ? -INFINITY : r;
    r = x < 0.0 ? NAN : r;
    r = x > 1.7976931348623157e308 ? x : r;
    return x != x ? x : r;
}

/* log1p(e) for e >= 0 (BCE's log1p(exp(-|x|))): log(u) with u = 1 + e rounded, corrected by the
 * rounding error of u: log1p(e) = log(u) + (e - (u - 1)) / u to first order. */
static inline float pn_log1p_f32(float e) {
    float u = 1.0f + e;
    return pn_log_f32(u) + (e - (u - 1.0f)) / u;
}
static inline double pn_log1p_f64(double e) {
    double u = 1.0 + e;
    return pn_log_f64(u) + (e - (u - 1.0)) / u;
}

/* 1 / (1 + exp(-x)) from e = exp(-|x|) <= 1: never overflows; sigmoid(-x) = e / (1 + e). */
static inline float pn_sigmoid_f32(float x) {
    float e = pn_exp_f32(-fabsf(x));
    return (x >= 0.0f ? 1.0f : e) / (1.0f + e);
}
static inline double pn_sigmoid_f64(double x) {
    double e = pn_exp_f64(-fabs(x));
    return (x >= 0.0 ? 1.0 : e) / (1.0 + e);
}

/* tanh: (1 - e) / (1 + e) with e = exp(-2|x|) (1 - e is exact for e >= 1/2, so the error of e is
 * amplified at most e/(1-e) < 1.6 times above |x| = 1/4); below 1/4 the odd Taylor series up to
 * x^11 (truncation < 1e-10 relative). */
static inline float pn_tanh_f32(float x) {
    float ax = fabsf(x);
    float e = pn_expneg_f32(-2.0f * ax);
    float big = copysignf((1.0f - e) / (1.0f + e), x);
    float z = x * x;
    float p = -1382.0f / 155925.0f;
    p = p * z + 62.0f / 2835.0f;
    p = p * z - 17.0f / 315.0f;
    p = p * z + 2.0f / 15.0f;
    p = p * z - 1.0f / 3.0f;
    float small = x + x * z * p;
    return ax < 0.25f ? small : big;
}

/* double: the same, with the series to x^25 below 1/4 (coefficients 2^2n (2^2n - 1) B_2n / (2n)!,
 * exact fractions; truncation < 1e-17 relative). */
static inline double pn_tanh_f64(double x) {
    double ax = fabs(x);
    double e = pn_exp_f64(-2.0 * ax);
    double big = copysign((1.0 - e) / (1.0 + e), x);
    double z = x * x;
    double p = 58870668456604.0 / 3698160658676859375.0;
    p = p * z - 113927491862.0 / 2900518163668125.0;
    p = p * z + 18888466084.0 / 194896477400625.0;
    p = p * z - 443861162.0 / 1856156927625.0;
    p = p * z + 6404582.0 / 10854718875.0;
    p = p * z - 929569.0 / 638512875.0;
    p = p * z + 21844.0 / 6081075.0;
    p = p * z - 1382.0 / 155925.0;
    p = p * z + 62.0 / 2835.0;
    p = p * z - 17.0 / 315.0;
    p = p * z + 2.0 / 15.0;
    p = p * z - 1.0 / 3.0;
    double small = x + x * z * p;
    return ax < 0.25 ? small : big;
}

#endif /* PYNN_VMATH_H */
