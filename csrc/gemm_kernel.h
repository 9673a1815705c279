/* The GEMM's per-ISA pieces, shared by the driver (gemm.c) and the micro-kernel files.
 *
 * Packed formats (Goto/BLIS): an A micro-panel holds MR rows of op(A) for kc steps, element
 * (i, p) at ap[p * MR + i]; a B micro-panel holds NR columns of op(B), element (p, j) at
 * bp[p * NR + j]; B's micro-panels lie PN_GEMM_BPANEL(kc, NR, T) elements apart (see there).
 * Rows/columns past the matrix edge are packed as zeros.
 *
 * Epilogue, the same arithmetic in every position of C (so results never depend on where the
 * tile boundaries fall, i.e. on the thread count): v = acc; v = v + C (when load_c); v = v + bias;
 * then identity, relu (max(0, v), NaN kept) or leaky_relu (v >= 0 ? v : alpha * v).
 */
#ifndef PYNN_GEMM_KERNEL_H
#define PYNN_GEMM_KERNEL_H

#include "isa.h"

/* C tile (mr x nr, row stride ldc) = [C +] Ap (MR x kc) . Bp (kc x NR, row stride ldb: NR when
 * packed), then bias (nr values or NULL) and
 * act (identity/relu/leaky_relu only). mr <= MR, nr <= NR. load_c = 0 never reads C. */
typedef void pn_ukr_f32(pn_size kc, const float *ap, const float *bp, pn_size ldb, float *c,
                        pn_size ldc, int mr, int nr, int load_c, const float *bias, int act,
                        float alpha);
typedef void pn_ukr_f64(pn_size kc, const double *ap, const double *bp, pn_size ldb, double *c,
                        pn_size ldc, int mr, int nr, int load_c, const double *bias, int act,
                        double alpha);

/* The micro-kernel with A read in place: element (i, p) of the A block at a[i*rsa + p*csa]
 * (rows past mr are never read). */
typedef void pn_ukr_sa_f32(pn_size kc, const float *a, pn_size rsa, pn_size csa, const float *bp,
                           float *c, pn_size ldc, int mr, int nr, int load_c, const float *bias,
                           int act, float alpha);
typedef void pn_ukr_sa_f64(pn_size kc, const double *a, pn_size rsa, pn_size csa,
                           const double *bp, double *c, pn_size ldc, int mr, int nr, int load_c,
                           const double *bias, int act, double alpha);

/* A block's bottom edge of at most 2 rows over three B micro-panels at once (panel q at
 * bp + q * PN_GEMM_BPANEL(kc, NR, T), writing columns c + q*NR; the third panel nr3 wide). */
typedef void pn_ukr_r2_f32(pn_size kc, const float *ap, const float *bp, float *c, pn_size ldc,
                           int mr, int nr3, int load_c, const float *bias, int act, float alpha);
typedef void pn_ukr_r2_f64(pn_size kc, const double *ap, const double *bp, double *c,
                           pn_size ldc, int mr, int nr3, int load_c, const double *bias, int act,
                           double alpha);

/* One row, unpacked (for products with very few rows, where packing B costs as much as the
 * product): c (n) = [c +] a (k values, stride inca) . B (k x n, row stride ldb), then bias, act.
 * Each element is one FMA chain over p = 0..k-1 in order. */
typedef void pn_rowk_f32(pn_size k, pn_size n, const float *a, pn_size inca, const float *b,
                         pn_size ldb, float *c, int load_c, const float *bias, int act,
                         float alpha);
typedef void pn_rowk_f64(pn_size k, pn_size n, const double *a, pn_size inca, const double *b,
                         pn_size ldb, double *c, int load_c, const double *bias, int act,
                         double alpha);

/* Register tile MR x NR and cache blocks: MC x KC of A (L2), KC x NC of B (L3), KC x NR in L1. */
typedef struct {
    int mr, nr;
    pn_size mc, kc, nc;
    int lanes; /* vector width in elements (1: scalar) */
    pn_ukr_f32 *ukr;
    pn_ukr_sa_f32 *ukr_sa;
    pn_ukr_r2_f32 *ukr_r2; /* NULL: not provided */
    pn_rowk_f32 *rowk;
    /* pack mc rows x kc of op(A) (a at op(A)(0,0), row stride lda of the stored matrix) */
    void (*pack_a)(float *ap, const float *a, pn_size lda, int trans, pn_size mc, pn_size kc);
    /* pack kc x nc of op(B) (b at op(B)(0,0)) */
    void (*pack_b)(float *bp, const float *b, pn_size ldb, int trans, pn_size kc, pn_size nc);
} pn_gemm_cfg_f32;

typedef struct {
    int mr, nr;
    pn_size mc, kc, nc;
    int lanes; /* vector width in elements (1: scalar) */
    pn_ukr_f64 *ukr;
    pn_ukr_sa_f64 *ukr_sa;
    pn_ukr_r2_f64 *ukr_r2; /* NULL: not provided */
    pn_rowk_f64 *rowk;
    /* pack mc rows x kc of op(A) (a at op(A)(0,0), row stride lda of the stored matrix) */
    void (*pack_a)(double *ap, const double *a, pn_size lda, int trans, pn_size mc, pn_size kc);
    /* pack kc x nc of op(B) (b at op(B)(0,0)) */
    void (*pack_b)(double *bp, const double *b, pn_size ldb, int trans, pn_size kc, pn_size nc);
} pn_gemm_cfg_f64;

extern const pn_gemm_cfg_f32 pn_gemm_cfg_f32_generic;
extern const pn_gemm_cfg_f64 pn_gemm_cfg_f64_generic;
#ifdef PN_HAVE_AVX2
extern const pn_gemm_cfg_f32 pn_gemm_cfg_f32_avx2;
extern const pn_gemm_cfg_f64 pn_gemm_cfg_f64_avx2;
#endif
#ifdef PN_HAVE_AVX512
extern const pn_gemm_cfg_f32 pn_gemm_cfg_f32_avx512;
extern const pn_gemm_cfg_f64 pn_gemm_cfg_f64_avx512;
#endif

#define PN_GEMM_MAX_MR 16
#define PN_GEMM_MAX_NR 32
/* Packed B micro-panels lie kc * nr elements apart, plus 256 bytes when that is a multiple of
 * 4 KiB (256 x 32 floats = 32 KiB): the non-transposed packing writes one row into every panel
 * in turn, and panels 4 KiB-multiples apart would send all those stores to the same L1 and L2
 * sets (the 128 x 1024 x 1024 float32 product 0.98x the time, 32 rows 0.92x; AVX2 0.96x). */
#define PN_GEMM_BPANEL(kc, nr, T)                                                          \
    ((kc) * (pn_size)(nr) +                                                                \
     ((kc) * (pn_size)(nr) * (pn_size)sizeof(T) % 4096 ? 0 : 256 / (pn_size)sizeof(T)))
/* Packing may write up to one vector past a panel: buffers carry this slack. */
#define PN_GEMM_PACK_SLACK 128

#endif /* PYNN_GEMM_KERNEL_H */
