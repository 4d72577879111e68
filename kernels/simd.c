/*
 * kernels/simd.c - CPU feature detection and the choice of kernel table: the one place that
 * knows which CPU runs which level.
 */
#include "kernels/simd.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

extern const KernelTable kernels_scalar;
#if SIMD_BUILD_X86
extern const KernelTable kernels_avx2;
extern const KernelTable kernels_avx512;
#endif
#if SIMD_BUILD_ARM
extern const KernelTable kernels_neon;
extern const KernelTable kernels_dotprod;
extern const KernelTable kernels_i8mm;
#endif

/* Every level this build compiled (NULL: not in this build). */
static const KernelTable *const tables[SIMD_LEVELS] = {
    [SIMD_SCALAR] = &kernels_scalar,
#if SIMD_BUILD_X86
    [SIMD_AVX2] = &kernels_avx2,
    [SIMD_AVX512] = &kernels_avx512,
#endif
#if SIMD_BUILD_ARM
    [SIMD_NEON] = &kernels_neon,
    [SIMD_DOTPROD] = &kernels_dotprod,
    [SIMD_I8MM] = &kernels_i8mm,
#endif
};

#if defined(__x86_64__)
#include <cpuid.h>

/* The CPU must have the instructions AND the operating system must save the wide
 * registers on context switches (XCR0), or the first AVX instruction faults. */
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* The best x86 level; cpuid is slow (in a virtual machine it traps to the hypervisor), so
 * it is asked once. */
static SimdLevel detect_once(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return SIMD_SCALAR;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return SIMD_SCALAR;
    const uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return SIMD_SCALAR; /* SSE and AVX state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return SIMD_SCALAR;
    const int avx2 = (b >> 5) & 1;
    const int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 28) & 1) && ((b >> 30) & 1) &&
                       ((b >> 31) & 1); /* F DQ CD BW VL */
    const int vnni = (c >> 11) & 1;
    if (avx512 && vnni && (xcr0 & 0xE0) == 0xE0) return SIMD_AVX512; /* opmask, ZMM state */
    if (avx2 && fma) return SIMD_AVX2;
    return SIMD_SCALAR;
}
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>

/* The kernel's HWCAP bits (asm/hwcap.h): Advanced SIMD, the dot product instructions, and
 * (in AT_HWCAP2) the int8 matrix multiply. */
enum { ARM_HWCAP_ASIMD = 1 << 1, ARM_HWCAP_ASIMDDP = 1 << 20, ARM_HWCAP2_I8MM = 1 << 13 };

static SimdLevel detect_once(void) {
    const unsigned long hwcap = getauxval(AT_HWCAP);
    if (!(hwcap & ARM_HWCAP_ASIMD)) return SIMD_SCALAR;
    if (!(hwcap & ARM_HWCAP_ASIMDDP)) return SIMD_NEON;
    return getauxval(AT_HWCAP2) & ARM_HWCAP2_I8MM ? SIMD_I8MM : SIMD_DOTPROD;
}
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>

/* Whether the CPU has an optional feature, by its hw.optional.arm name (0 when the system
 * does not know the name). */
static int apple_feature(const char *name) {
    int value = 0;
    size_t size = sizeof value;
    return sysctlbyname(name, &value, &size, NULL, 0) == 0 && value;
}

/* Every Apple ARM CPU has Advanced SIMD; the dot product from the M1 on, the int8 matrix
 * multiply from the M2 on. */
static SimdLevel detect_once(void) {
    if (!apple_feature("hw.optional.arm.FEAT_DotProd")) return SIMD_NEON;
    return apple_feature("hw.optional.arm.FEAT_I8MM") ? SIMD_I8MM : SIMD_DOTPROD;
}
#elif defined(__aarch64__)
/* Another system: Advanced SIMD is part of every AArch64 CPU; the rest is not asked. */
static SimdLevel detect_once(void) { return SIMD_NEON; }
#else
static SimdLevel detect_once(void) { return SIMD_SCALAR; }
#endif

/* The best level this CPU runs natively; the levels of an architecture form a chain, each
 * including the one below (and scalar below them all). */
static SimdLevel cpu_best(void) {
    static atomic_int detected = -1; /* threads may race here; they store the same value */
    int level = atomic_load_explicit(&detected, memory_order_relaxed);
    if (level < 0) {
        level = (int)detect_once();
        atomic_store_explicit(&detected, level, memory_order_relaxed);
    }
    return (SimdLevel)level;
}

int simd_emulated(void) {
#if defined(SIMD_EMULATED)
    return 1;
#else
    return 0;
#endif
}

SimdLevel simd_detect(void) { return simd_emulated() ? SIMD_SCALAR : cpu_best(); }

/* The chain (architecture) of a level: 0 for scalar, which every chain starts from. */
static int level_chain(SimdLevel level) {
    return level >= SIMD_NEON ? 2 : level >= SIMD_AVX2 ? 1 : 0;
}

/* Whether this CPU runs a level natively: one of its own chain, at most its best. */
static int runs_natively(SimdLevel level) {
    const SimdLevel best = cpu_best();
    return level == SIMD_SCALAR || (level_chain(level) == level_chain(best) && level <= best);
}

const KernelTable *simd_kernels(SimdLevel level) {
    if (level < 0 || level >= SIMD_LEVELS || !tables[level]) return NULL;
    if (!simd_emulated() && !runs_natively(level)) return NULL;
    return tables[level];
}

static atomic_int chosen = -1; /* -1: not chosen, use the detected level */

SimdLevel simd_current(void) {
    const int level = atomic_load_explicit(&chosen, memory_order_relaxed);
    return level < 0 ? simd_detect() : (SimdLevel)level;
}

const KernelTable *simd_current_kernels(void) { return simd_kernels(simd_current()); }

const char *simd_level_name(SimdLevel level) {
    static const char *const names[SIMD_LEVELS] = {"scalar", "avx2", "avx512", "neon", "dotprod", "i8mm"};
    return level >= 0 && level < SIMD_LEVELS ? names[level] : "?";
}

const char *const simd_entry_names[SIMD_ENTRIES] = {"r4_block", "r4_finish", "dot_i8", "dot_f32",
                                                    "quantize_r4", "r4_pack", "r4_gemm", "swiglu", "softmax",
                                                    "hadamard"};

/* Entry e of a table as an address to compare (the entries are function pointers of
 * different types; only their identity matters here). */
static const void *entry(const KernelTable *k, int e) {
    static const size_t offsets[SIMD_ENTRIES] = {
        offsetof(KernelTable, r4_block), offsetof(KernelTable, r4_finish), offsetof(KernelTable, dot_i8),
        offsetof(KernelTable, dot_f32),  offsetof(KernelTable, quantize_r4), offsetof(KernelTable, r4_pack),
        offsetof(KernelTable, r4_gemm),  offsetof(KernelTable, swiglu),      offsetof(KernelTable, softmax),
        offsetof(KernelTable, hadamard)};
    void (*fn)(void);
    memcpy(&fn, (const char *)k + offsets[e], sizeof fn);
    return fn ? (const void *)(size_t)fn : NULL;
}

SimdLevel simd_entry_level(SimdLevel l, int e) {
    for (int below = 0; below < (int)l; below++)
        if (tables[below] && entry(tables[below], e) && entry(tables[below], e) == entry(tables[l], e))
            return (SimdLevel)below;
    return l;
}

void simd_describe(SimdLevel l, char *buf, size_t len) {
    size_t at = (size_t)snprintf(buf, len, "%s (", simd_level_name(l));
    int borrowed = 0;
    for (int e = 0; e < SIMD_ENTRIES && at < len; e++) {
        const SimdLevel from = simd_entry_level(l, e);
        if (from == l || !entry(tables[l], e)) continue;
        at += (size_t)snprintf(buf + at, len - at, "%s%s from %s", borrowed++ ? ", " : "", simd_entry_names[e],
                               simd_level_name(from));
    }
    if (at < len) at += (size_t)snprintf(buf + at, len - at, "%s", borrowed ? "" : l == SIMD_SCALAR ? "the definition" : "every entry its own");
    if (at < len) snprintf(buf + at, len - at, "%s)", simd_emulated() && l != SIMD_SCALAR ? "; emulated by SIMDe" : "");
}

void r4_acts_quantize(R4Acts *a, int t, const float *x, QuantKind kind, int base_qmax, int rounding) {
    simd_current_kernels()->quantize_r4(a, t, x, kind, base_qmax, rounding);
}

int simd_use(const char *name) {
    for (int l = 0; l < SIMD_LEVELS; l++) {
        if (strcmp(name, simd_level_name((SimdLevel)l)) != 0) continue;
        if (!simd_kernels((SimdLevel)l)) return -1;
        atomic_store_explicit(&chosen, l, memory_order_relaxed);
        return 0;
    }
    return -1;
}
