/* Atomics and little-endian loads/stores for the shared-memory rings (ring.pyx).
 *
 * The ring's counters live in memory that several processes map
 * (multiprocessing.shared_memory), so these are the GCC/Clang __atomic builtins on
 * plain integers: lock-free 4- and 8-byte atomics are address-free, they work across
 * processes as they do across threads (checked below). Pointers must be naturally
 * aligned; the ring checks its buffer's alignment when it attaches.
 *
 * Orders used by the ring:
 *   acquire load / release store   a counter and the bytes it publishes
 *   seq_cst store + seq_cst fence  the "waiting" flags (a Dekker handshake: each side
 *                                  stores its own flag or counter, then loads the other
 *                                  side's; only a full fence keeps that store -> load
 *                                  order, x86 included)
 */
#ifndef FP_ATOMIC_H
#define FP_ATOMIC_H

#include <stdint.h>
#include <string.h>

#if !defined(__GNUC__)
#error "fp_atomic.h needs the GCC/Clang __atomic builtins"
#endif

_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0),
               "the ring needs lock-free 64-bit atomics (address-free across processes)");
_Static_assert(__atomic_always_lock_free(sizeof(uint32_t), 0),
               "the ring needs lock-free 32-bit atomics (address-free across processes)");

static inline uint64_t fp_load_acquire_u64(const uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void fp_store_release_u64(uint64_t *p, uint64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline uint32_t fp_load_acquire_u32(const uint32_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void fp_store_release_u32(uint32_t *p, uint32_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline void fp_store_seq_cst_u32(uint32_t *p, uint32_t v) {
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}
static inline void fp_fence_seq_cst(void) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Little-endian fields of the frames (unaligned; a no-op swap on little-endian hosts). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FP_LE16(v) __builtin_bswap16(v)
#define FP_LE32(v) __builtin_bswap32(v)
#define FP_LE64(v) __builtin_bswap64(v)
#else
#define FP_LE16(v) (v)
#define FP_LE32(v) (v)
#define FP_LE64(v) (v)
#endif

static inline void fp_put_le16(char *p, uint16_t v) { v = FP_LE16(v); memcpy(p, &v, 2); }
static inline void fp_put_le32(char *p, uint32_t v) { v = FP_LE32(v); memcpy(p, &v, 4); }
static inline void fp_put_le64(char *p, uint64_t v) { v = FP_LE64(v); memcpy(p, &v, 8); }

static inline uint16_t fp_get_le16(const char *p) { uint16_t v; memcpy(&v, p, 2); return FP_LE16(v); }
static inline uint32_t fp_get_le32(const char *p) { uint32_t v; memcpy(&v, p, 4); return FP_LE32(v); }
static inline uint64_t fp_get_le64(const char *p) { uint64_t v; memcpy(&v, p, 8); return FP_LE64(v); }

#endif
