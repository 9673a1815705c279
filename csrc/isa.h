/* Helpers for sources compiled once per ISA (csrc/multi/) and for the dispatchers that call them.
 *
 * A file in csrc/multi/ is compiled three times, with PN_ISA_SUFFIX set to _generic, _avx2 or
 * _avx512 and the matching -m flags; PN_ISA_FN(relu_f32) names relu_f32_avx2 etc. A dispatcher
 * declares the three with PN_DECLARE_ISA and picks one with PN_DISPATCH.
 */
#ifndef PYNN_ISA_H
#define PYNN_ISA_H

#include "pynn.h"

#define PN_CAT_(a, b) a##b
#define PN_CAT(a, b) PN_CAT_(a, b)
#ifdef PN_ISA_SUFFIX
#define PN_ISA_FN(name) PN_CAT(name, PN_ISA_SUFFIX)
#endif

#if defined(_MSC_VER)
#define PN_RESTRICT __restrict
#else
#define PN_RESTRICT restrict
#endif

/* THE dispatch rule (every per-ISA choice goes through it): pick the active ISA's instance of
 * `name` (a kernel, or with PN_DISPATCH_PTR the address of a per-ISA object such as the GEMM's
 * kernel table); generic for paths not built. */
#if defined(PN_HAVE_AVX512) && defined(PN_HAVE_AVX2)
#define PN_DISPATCH_PTR_(name)                                                                 \
    (pn_active_isa == PN_ISA_AVX512 ? &name##_avx512                                          \
     : pn_active_isa == PN_ISA_AVX2 ? &name##_avx2 : &name##_generic)
#define PN_DECLARE_ISA(ret, name, args) \
    ret name##_generic args;            \
    ret name##_avx2 args;               \
    ret name##_avx512 args
#else
#define PN_DISPATCH_PTR_(name) (&name##_generic)
#define PN_DECLARE_ISA(ret, name, args) ret name##_generic args
#endif
/* (one level of indirection: a macro argument such as the GEMM's CFG is expanded first) */
#define PN_DISPATCH_PTR(name) PN_DISPATCH_PTR_(name)
#define PN_DISPATCH(name) (*PN_DISPATCH_PTR(name))

#ifdef PN_OPENMP
#include <omp.h>
#define PN_PRAGMA(x) _Pragma(#x)
#define PN_OMP(x) PN_PRAGMA(omp x)
#else
#define PN_OMP(x)
#endif

#endif /* PYNN_ISA_H */
