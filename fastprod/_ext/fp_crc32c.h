/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as Kafka's record batch v2 uses.
 *
 * Three implementations, chosen once at start-up by fp_crc32c_init():
 *   - x86-64 SSE4.2 `crc32` instruction,
 *   - aarch64 ARMv8 CRC extension `crc32c*` instructions,
 *   - a slicing-by-8 table everywhere else (or when FASTPROD_CRC32C=table is set).
 *
 * The crc32 instruction has a latency of 3 cycles but a throughput of one per cycle, so
 * the hardware paths run three independent streams over three adjacent blocks and then
 * merge them: crc(A || B) = shift(crc(A), |B|) ^ crc0(B), where shift() appends |B| zero
 * bytes. shift() by a fixed length is linear in the 32-bit register, so it is four table
 * lookups; the tables are built at start-up from the GF(2) operator for one zero byte.
 *
 * All functions work on the raw register: callers pre- and post-invert.
 */
#ifndef FP_CRC32C_H
#define FP_CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FP_CRC32C_POLY 0x82F63B78u
#define FP_CRC32C_LONG 8192  /* bytes per stream in the large interleaved loop */
#define FP_CRC32C_SHORT 256  /* bytes per stream in the small interleaved loop */

enum { FP_CRC32C_TABLE = 0, FP_CRC32C_SSE42 = 1, FP_CRC32C_ARMV8 = 2 };

static uint32_t fp_crc32c_table[8][256];
static uint32_t fp_crc32c_long[4][256];
static uint32_t fp_crc32c_short[4][256];
static int fp_crc32c_impl = FP_CRC32C_TABLE;

/* ---- GF(2) linear operators on the 32-bit register: op[i] is the image of bit i ---- */

static uint32_t fp_gf2_apply(const uint32_t *op, uint32_t vec) {
    uint32_t sum = 0;
    for (int i = 0; vec; i++, vec >>= 1)
        if (vec & 1) sum ^= op[i];
    return sum;
}

/* out = a after b (out may not alias a or b) */
static void fp_gf2_compose(uint32_t *out, const uint32_t *a, const uint32_t *b) {
    for (int i = 0; i < 32; i++) out[i] = fp_gf2_apply(a, b[i]);
}

/* Operator that appends `len` zero bytes to a raw CRC register. */
static void fp_crc32c_zeros_op(uint32_t *op, size_t len) {
    uint32_t base[32], tmp[32];
    /* one zero bit: shift right, folding the polynomial in when bit 0 falls out */
    base[0] = FP_CRC32C_POLY;
    for (int i = 1; i < 32; i++) base[i] = 1u << (i - 1);
    for (int k = 0; k < 3; k++) { /* 1 bit -> 8 bits = one zero byte */
        fp_gf2_compose(tmp, base, base);
        memcpy(base, tmp, sizeof tmp);
    }
    for (int i = 0; i < 32; i++) op[i] = 1u << i; /* identity */
    while (len) { /* exponentiation by squaring */
        if (len & 1) {
            fp_gf2_compose(tmp, base, op);
            memcpy(op, tmp, sizeof tmp);
        }
        len >>= 1;
        if (len) {
            fp_gf2_compose(tmp, base, base);
            memcpy(base, tmp, sizeof tmp);
        }
    }
}

static void fp_crc32c_shift_table(uint32_t table[4][256], size_t len) {
    uint32_t op[32];
    fp_crc32c_zeros_op(op, len);
    for (int n = 0; n < 256; n++)
        for (int k = 0; k < 4; k++) table[k][n] = fp_gf2_apply(op, (uint32_t)n << (8 * k));
}

static inline uint32_t fp_crc32c_shift(uint32_t table[4][256], uint32_t crc) {
    return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^
           table[2][(crc >> 16) & 0xff] ^ table[3][crc >> 24];
}

/* ---- table-driven (slicing-by-8) fallback ---- */

static uint32_t fp_crc32c_sw(uint32_t crc, const unsigned char *p, size_t len) {
    while (len && ((uintptr_t)p & 7)) {
        crc = fp_crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        w ^= crc;
        crc = fp_crc32c_table[7][w & 0xff] ^ fp_crc32c_table[6][(w >> 8) & 0xff] ^
              fp_crc32c_table[5][(w >> 16) & 0xff] ^ fp_crc32c_table[4][(w >> 24) & 0xff] ^
              fp_crc32c_table[3][(w >> 32) & 0xff] ^ fp_crc32c_table[2][(w >> 40) & 0xff] ^
              fp_crc32c_table[1][(w >> 48) & 0xff] ^ fp_crc32c_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--) crc = fp_crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

/* ---- hardware paths: one body, instantiated per instruction set ---- */

#define FP_CRC32C_HW_BODY(CRC8, CRC64)                                                   \
    uint64_t crc0 = crc, crc1, crc2;                                                     \
    while (len && ((uintptr_t)p & 7)) {                                                  \
        crc0 = CRC8((uint32_t)crc0, *p++);                                               \
        len--;                                                                           \
    }                                                                                    \
    while (len >= 3 * FP_CRC32C_LONG) {                                                  \
        const unsigned char *end = p + FP_CRC32C_LONG;                                   \
        crc1 = crc2 = 0;                                                                 \
        do {                                                                             \
            uint64_t a, b, c;                                                            \
            memcpy(&a, p, 8);                                                            \
            memcpy(&b, p + FP_CRC32C_LONG, 8);                                           \
            memcpy(&c, p + 2 * FP_CRC32C_LONG, 8);                                       \
            crc0 = CRC64(crc0, a);                                                       \
            crc1 = CRC64(crc1, b);                                                       \
            crc2 = CRC64(crc2, c);                                                       \
            p += 8;                                                                      \
        } while (p < end);                                                               \
        crc0 = fp_crc32c_shift(fp_crc32c_long, (uint32_t)crc0) ^ crc1;                   \
        crc0 = fp_crc32c_shift(fp_crc32c_long, (uint32_t)crc0) ^ crc2;                   \
        p += 2 * FP_CRC32C_LONG;                                                         \
        len -= 3 * FP_CRC32C_LONG;                                                       \
    }                                                                                    \
    while (len >= 3 * FP_CRC32C_SHORT) {                                                 \
        const unsigned char *end = p + FP_CRC32C_SHORT;                                  \
        crc1 = crc2 = 0;                                                                 \
        do {                                                                             \
            uint64_t a, b, c;                                                            \
            memcpy(&a, p, 8);                                                            \
            memcpy(&b, p + FP_CRC32C_SHORT, 8);                                          \
            memcpy(&c, p + 2 * FP_CRC32C_SHORT, 8);                                      \
            crc0 = CRC64(crc0, a);                                                       \
            crc1 = CRC64(crc1, b);                                                       \
            crc2 = CRC64(crc2, c);                                                       \
            p += 8;                                                                      \
        } while (p < end);                                                               \
        crc0 = fp_crc32c_shift(fp_crc32c_short, (uint32_t)crc0) ^ crc1;                  \
        crc0 = fp_crc32c_shift(fp_crc32c_short, (uint32_t)crc0) ^ crc2;                  \
        p += 2 * FP_CRC32C_SHORT;                                                        \
        len -= 3 * FP_CRC32C_SHORT;                                                      \
    }                                                                                    \
    while (len >= 8) {                                                                   \
        uint64_t a;                                                                      \
        memcpy(&a, p, 8);                                                                \
        crc0 = CRC64(crc0, a);                                                           \
        p += 8;                                                                          \
        len -= 8;                                                                        \
    }                                                                                    \
    while (len--) crc0 = CRC8((uint32_t)crc0, *p++);                                     \
    return (uint32_t)crc0;

#if defined(__x86_64__)
#include <nmmintrin.h>
__attribute__((target("sse4.2")))
static uint32_t fp_crc32c_hw(uint32_t crc, const unsigned char *p, size_t len) {
    FP_CRC32C_HW_BODY(_mm_crc32_u8, _mm_crc32_u64)
}
static int fp_crc32c_cpu_has_hw(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}
#define FP_CRC32C_HW_IMPL FP_CRC32C_SSE42

#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
__attribute__((target("+crc")))
static inline uint32_t fp_crc32c_arm8(uint32_t crc, unsigned char b) {
    return __builtin_aarch64_crc32cb(crc, b);
}
__attribute__((target("+crc")))
static inline uint64_t fp_crc32c_arm64(uint64_t crc, uint64_t w) {
    return __builtin_aarch64_crc32cx((uint32_t)crc, w);
}
__attribute__((target("+crc")))
static uint32_t fp_crc32c_hw(uint32_t crc, const unsigned char *p, size_t len) {
    FP_CRC32C_HW_BODY(fp_crc32c_arm8, fp_crc32c_arm64)
}
static int fp_crc32c_cpu_has_hw(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
#define FP_CRC32C_HW_IMPL FP_CRC32C_ARMV8

#else
static uint32_t fp_crc32c_hw(uint32_t crc, const unsigned char *p, size_t len) {
    return fp_crc32c_sw(crc, p, len);
}
static int fp_crc32c_cpu_has_hw(void) { return 0; }
#define FP_CRC32C_HW_IMPL FP_CRC32C_TABLE
#endif

/* Raw register update with whichever implementation init chose. */
static inline uint32_t fp_crc32c_raw(uint32_t crc, const char *p, size_t len) {
    if (fp_crc32c_impl != FP_CRC32C_TABLE)
        return fp_crc32c_hw(crc, (const unsigned char *)p, len);
    return fp_crc32c_sw(crc, (const unsigned char *)p, len);
}

static void fp_crc32c_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ FP_CRC32C_POLY : c >> 1;
        fp_crc32c_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = fp_crc32c_table[0][n];
        for (int k = 1; k < 8; k++) {
            c = fp_crc32c_table[0][c & 0xff] ^ (c >> 8);
            fp_crc32c_table[k][n] = c;
        }
    }
    fp_crc32c_shift_table(fp_crc32c_long, FP_CRC32C_LONG);
    fp_crc32c_shift_table(fp_crc32c_short, FP_CRC32C_SHORT);
    const char *force = getenv("FASTPROD_CRC32C");
    int forced_table = force != NULL && strcmp(force, "table") == 0;
    fp_crc32c_impl = (!forced_table && fp_crc32c_cpu_has_hw()) ? FP_CRC32C_HW_IMPL : FP_CRC32C_TABLE;
}

#endif
