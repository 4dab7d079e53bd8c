/*
 * Instruction-set variants of the micro-kernels, and which of them this CPU runs.
 *
 * Every micro-kernel family (gemm_ukernel.h, dwconv_ukernel.h) is one body written with
 * GCC/Clang vector extensions. A family's dispatch header includes that body once per variant
 * listed here, with the variant's vector width and a `target` attribute, so one build carries
 * code for the baseline of the architecture and for its wider extensions, and the best one the
 * CPU supports is chosen at import (cconv/_isa.py). No `-march` flag is needed.
 *
 *   variant   vector bytes   target attribute             registers  rows of the gemm tile
 *   x86-64:
 *   sse2      16             (baseline)                   16         6
 *   avx2      32             avx2,fma                     16         6
 *   avx512    64             avx512f,avx2,fma             32         12
 *   aarch64:
 *   neon      16             (baseline: asimd + fma)      32         12
 *   armv7:
 *   scalar    16             (baseline: vfp, emulated)    -          4
 *   neon      16             fpu=neon-vfpv4 (+unsafe-math)16         6
 *   anything else:
 *   scalar    16             (baseline, emulated)         -          4
 *
 * Each family is instantiated for every variant and dtype by instantiate.h, and a variant's
 * function is picked at run time by CC_ISA_PICK: the one dispatch mechanism.
 * Variant ids (enum cc_isa) are small ints in the order of the list: 0 is always the baseline,
 * each later id needs more of the CPU. cconv._isa.Isa mirrors them by name (CC_ISA_NAMES, in
 * id order); Python passes the id to the kernels as a plain int.
 */
#ifndef CCONV_ISA_H
#define CCONV_ISA_H

#include <stddef.h>

#if defined(__x86_64__) || defined(__i386__)
#define CC_ARCH_X86 1
#define CC_NUM_ISAS 3
#define CC_ISA_NAMES {"sse2", "avx2", "avx512"}
#define CC_NAME_0 sse2
#define CC_NAME_1 avx2
#define CC_NAME_2 avx512
#define CC_TARGET_1 __attribute__((target("avx2,fma")))
#define CC_TARGET_2 __attribute__((target("avx512f,avx2,fma")))
#define CC_VBYTES_0 16
#define CC_VBYTES_1 32
#define CC_VBYTES_2 64
#define CC_MRMAX_0 6
#define CC_MRMAX_1 6
#define CC_MRMAX_2 12
enum cc_isa { CC_ISA_SSE2 = 0, CC_ISA_AVX2 = 1, CC_ISA_AVX512 = 2 };
#elif defined(__aarch64__)
#define CC_ARCH_AARCH64 1
#define CC_NUM_ISAS 1
#define CC_ISA_NAMES {"neon"}
#define CC_NAME_0 neon
#define CC_VBYTES_0 16
#define CC_MRMAX_0 12
enum cc_isa { CC_ISA_NEON = 0 };
#elif defined(__arm__) && defined(__GNUC__) && !defined(__clang__) && !defined(__ARM_NEON)
#define CC_ARCH_ARM32 1
#define CC_NUM_ISAS 2
#define CC_ISA_NAMES {"scalar", "neon"}
#define CC_NAME_0 scalar
#define CC_NAME_1 neon
/* GCC uses NEON's vector arithmetic on armv7 only with unsafe-math: NEON flushes subnormals
   (not IEEE), which the kernels do on every instruction set anyway (cc_flush_denormals).
   Without it the "neon" variant ran scalar VFP code. */
#define CC_TARGET_1 \
    __attribute__((target("fpu=neon-vfpv4"), optimize("unsafe-math-optimizations")))
#define CC_VBYTES_0 16
#define CC_VBYTES_1 16
#define CC_MRMAX_0 4
#define CC_MRMAX_1 6
enum cc_isa { CC_ISA_SCALAR = 0, CC_ISA_NEON = 1 };
#elif defined(__ARM_NEON)
#define CC_NUM_ISAS 1
#define CC_ISA_NAMES {"neon"}
#define CC_NAME_0 neon
#define CC_VBYTES_0 16
#define CC_MRMAX_0 6
enum cc_isa { CC_ISA_NEON = 0 };
#else
#define CC_NUM_ISAS 1
#define CC_ISA_NAMES {"scalar"}
#define CC_NAME_0 scalar
#define CC_VBYTES_0 16
#define CC_MRMAX_0 4
enum cc_isa { CC_ISA_SCALAR = 0 };
#endif

/* `return X(id);` for the variant id == isa (X: a macro of the id, e.g. a family's function
   of that variant). Assumes: 0 <= isa < CC_NUM_ISAS. */
#if CC_NUM_ISAS > 2
#define CC_ISA_PICK(isa, X)                                                                  \
    switch (isa) {                                                                           \
    case 2: return X(2);                                                                     \
    case 1: return X(1);                                                                     \
    default: return X(0);                                                                    \
    }
#elif CC_NUM_ISAS > 1
#define CC_ISA_PICK(isa, X)                                                                  \
    switch (isa) {                                                                           \
    case 1: return X(1);                                                                     \
    default: return X(0);                                                                    \
    }
#else
#define CC_ISA_PICK(isa, X) (void)(isa); return X(0);
#endif

#ifndef CC_TARGET_0
#define CC_TARGET_0
#endif

#if defined(CC_ARCH_ARM32) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_NEON
#define HWCAP_NEON (1 << 12)
#endif
#ifndef HWCAP_VFPv4
#define HWCAP_VFPv4 (1 << 16)
#endif
#endif

/* Whether this CPU (and its OS, for the wide registers' state) runs variant `isa`. */
static inline int cc_isa_supported(int isa)
{
    if (isa == 0)
        return 1;
#if defined(CC_ARCH_X86)
    __builtin_cpu_init();
    if (isa == CC_ISA_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == CC_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma");
#elif defined(CC_ARCH_ARM32) && defined(__linux__)
    if (isa == CC_ISA_NEON) {
        unsigned long hw = getauxval(AT_HWCAP);
        return (hw & HWCAP_NEON) && (hw & HWCAP_VFPv4);
    }
#endif
    return 0;
}

static inline const char *cc_isa_name(int isa)
{
    static const char *names[CC_NUM_ISAS] = CC_ISA_NAMES;
    return (isa >= 0 && isa < CC_NUM_ISAS) ? names[isa] : "";
}

/* Vector bytes of variant `isa` (the SIMD width its micro-kernels use). */
#define CC_VBYTES_OF(id) CC_VBYTES_##id
static inline int cc_isa_vector_bytes(int isa) { CC_ISA_PICK(isa, CC_VBYTES_OF) }

/* Most rows of a gemm tile of variant `isa` (how many accumulator rows fit in its registers). */
#define CC_MRMAX_OF(id) CC_MRMAX_##id
static inline int cc_isa_mr_max(int isa) { CC_ISA_PICK(isa, CC_MRMAX_OF) }

/*
 * Subnormal numbers are flushed to zero inside the kernels (and only there: the previous mode
 * is restored when a call returns): on x86 each operation on a subnormal takes a microcode
 * assist, which makes a layer fed them crawl (decisions: Subnormals flushed); results differ
 * only where values fall below 1.2e-38 (float32) or 2.2e-308 (float64). armv7 NEON always
 * flushes.
 */
#if defined(CC_ARCH_X86) && defined(__SSE__)
#include <xmmintrin.h>
static inline unsigned long cc_flush_denormals(void)
{
    unsigned long old = _mm_getcsr();
    _mm_setcsr((unsigned int)(old | 0x8040));   /* FTZ (bit 15) and DAZ (bit 6) */
    return old;
}
static inline void cc_restore_fp_mode(unsigned long old) { _mm_setcsr((unsigned int)old); }
#elif defined(__aarch64__) && defined(__GNUC__)
static inline unsigned long cc_flush_denormals(void)
{
    unsigned long old;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(old));
    __asm__ __volatile__("msr fpcr, %0" : : "r"(old | (1UL << 24)));   /* FZ */
    return old;
}
static inline void cc_restore_fp_mode(unsigned long old)
{
    __asm__ __volatile__("msr fpcr, %0" : : "r"(old));
}
#elif defined(__arm__) && defined(__GNUC__) && defined(__ARM_FP)
static inline unsigned long cc_flush_denormals(void)
{
    unsigned int old;
    __asm__ __volatile__("vmrs %0, fpscr" : "=r"(old));
    __asm__ __volatile__("vmsr fpscr, %0" : : "r"(old | (1U << 24)));   /* FZ */
    return old;
}
static inline void cc_restore_fp_mode(unsigned long old)
{
    __asm__ __volatile__("vmsr fpscr, %0" : : "r"((unsigned int)old));
}
#else
static inline unsigned long cc_flush_denormals(void) { return 0; }
static inline void cc_restore_fp_mode(unsigned long old) { (void)old; }
#endif

#define CC_CAT_(a, b) a##b
#define CC_CAT(a, b) CC_CAT_(a, b)
#define CC_CAT3(a, b, c) CC_CAT(CC_CAT(a, b), c)

/* X-macro row lists: CC_ROWS_n(X) expands X(0) ... X(n-1), for named accumulators. */
#define CC_ROWS_1(X) X(0)
#define CC_ROWS_2(X) CC_ROWS_1(X) X(1)
#define CC_ROWS_3(X) CC_ROWS_2(X) X(2)
#define CC_ROWS_4(X) CC_ROWS_3(X) X(3)
#define CC_ROWS_5(X) CC_ROWS_4(X) X(4)
#define CC_ROWS_6(X) CC_ROWS_5(X) X(5)
#define CC_ROWS_7(X) CC_ROWS_6(X) X(6)
#define CC_ROWS_8(X) CC_ROWS_7(X) X(7)
#define CC_ROWS_9(X) CC_ROWS_8(X) X(8)
#define CC_ROWS_10(X) CC_ROWS_9(X) X(9)
#define CC_ROWS_11(X) CC_ROWS_10(X) X(10)
#define CC_ROWS_12(X) CC_ROWS_11(X) X(11)

#endif /* CCONV_ISA_H */
