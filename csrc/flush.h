/* Subnormals flushed to zero inside a kernel (internal to csrc/).
 *
 * On Intel cores an operation with a subnormal operand or result takes a microcode assist
 * (~100x slower); values that small carry no information in training (optimizer state, the
 * exp of a very negative logit). The optimizer, activation and loss kernels therefore run with
 * MXCSR's flush-to-zero (results below the smallest normal number become 0) and
 * denormals-are-zero (subnormal inputs read as 0), set on the thread that runs them and
 * restored after: the Python process and every other computation keep IEEE semantics. The mode
 * is the same on every thread, so results stay bitwise the same at any thread count; they
 * differ from IEEE only for values below 1.2e-38 (float32) or 2.2e-308 (float64).
 */
#ifndef PYNN_FLUSH_H
#define PYNN_FLUSH_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PN_FLUSH_BITS 0x8000u /* MXCSR: flush-to-zero (bit 15) */
static inline unsigned pn_flush_begin(void) {
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | PN_FLUSH_BITS);
    return old;
}
static inline void pn_flush_end(unsigned old) { _mm_setcsr(old); }
#else
static inline unsigned pn_flush_begin(void) { return 0; }
static inline void pn_flush_end(unsigned old) { (void)old; }
#endif

/* STMT with subnormals flushed on the calling thread. */
#define PN_FLUSHED(STMT)                                                                      \
    do {                                                                                      \
        unsigned pn_csr_ = pn_flush_begin();                                                  \
        STMT;                                                                                 \
        pn_flush_end(pn_csr_);                                                                \
    } while (0)

#endif /* PYNN_FLUSH_H */
