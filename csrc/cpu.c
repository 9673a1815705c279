/* CPU feature detection, ISA dispatch and thread control.
 *
 * A path is usable when it was built, the CPU reports the instructions (CPUID) and the OS saves
 * the wider registers on context switch (XGETBV): the same check BLIS and OpenBLAS make.
 */
#include "isa.h"

#include <stdio.h>

int pn_active_isa = PN_ISA_GENERIC;

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static int cpu_has_avx2_fma(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!(fma && osxsave && avx)) return 0;
    if ((read_xcr0() & 0x6) != 0x6) return 0; /* XMM and YMM state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1; /* AVX2 */
}

static int cpu_has_avx512(void) {
    unsigned int a, b, c, d;
    if (!cpu_has_avx2_fma()) return 0;
    if ((read_xcr0() & 0xe6) != 0xe6) return 0; /* opmask, ZMM_Hi256, Hi16_ZMM state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    return f && dq && bw && vl;
}
#else
static int cpu_has_avx2_fma(void) { return 0; }
static int cpu_has_avx512(void) { return 0; }
#endif

int pn_isa_built(int isa) {
    switch (isa) {
    case PN_ISA_GENERIC: return 1;
#ifdef PN_HAVE_AVX2
    case PN_ISA_AVX2: return 1;
#endif
#ifdef PN_HAVE_AVX512
    case PN_ISA_AVX512: return 1;
#endif
    default: return 0;
    }
}

int pn_isa_supported(int isa) {
    if (!pn_isa_built(isa)) return 0;
    switch (isa) {
    case PN_ISA_GENERIC: return 1;
    case PN_ISA_AVX2: return cpu_has_avx2_fma();
    case PN_ISA_AVX512: return cpu_has_avx512();
    default: return 0;
    }
}

int pn_best_isa(void) {
    for (int isa = PN_ISA_COUNT - 1; isa > PN_ISA_GENERIC; isa--)
        if (pn_isa_supported(isa)) return isa;
    return PN_ISA_GENERIC;
}

int pn_set_isa(int isa) {
    if (!pn_isa_supported(isa)) return -1;
    pn_active_isa = isa;
    return 0;
}

const char *pn_isa_name(int isa) {
    static const char *names[PN_ISA_COUNT] = {"generic", "avx2", "avx512"};
    return (isa >= 0 && isa < PN_ISA_COUNT) ? names[isa] : "unknown";
}

/* ---- threads ---------------------------------------------------------------------------------- */

/* 0 means "not set by pynn": follow OpenMP (OMP_NUM_THREADS, threadpoolctl). */
static int pynn_threads = 0;

void pn_set_num_threads(int n) {
    if (n < 1) n = 1;
    pynn_threads = n;
#ifdef PN_OPENMP
    /* Also raise/lower OpenMP's limit for this thread, so a later threadpoolctl limit composes. */
    omp_set_num_threads(n);
#endif
}

int pn_get_num_threads(void) {
#ifdef PN_OPENMP
    int omp = omp_get_max_threads(); /* what threadpoolctl and OMP_NUM_THREADS control */
    if (pynn_threads > 0 && pynn_threads < omp) return pynn_threads;
    return omp;
#else
    return 1;
#endif
}

int pn_threads_for(double work, double grain) {
    int nt = pn_get_num_threads();
    if (nt <= 1 || work < grain) return 1;
    double most = work / grain; /* at least `grain` units of work per thread */
    if (most < nt) nt = (int)most;
    return nt < 1 ? 1 : nt;
}

int pn_openmp_enabled(void) {
#ifdef PN_OPENMP
    return 1;
#else
    return 0;
#endif
}

int pn_openmp_spec(void) {
#ifdef _OPENMP
    return _OPENMP;
#else
    return 0;
#endif
}

const char *pn_compiler(void) {
#ifdef PN_COMPILER
    return PN_COMPILER;
#else
    return "unknown";
#endif
}

const char *pn_openmp_version(void) {
#ifdef PN_OPENMP_VERSION
    return PN_OPENMP_VERSION;
#else
    return "";
#endif
}
