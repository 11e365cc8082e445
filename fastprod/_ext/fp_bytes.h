/* Big-endian loads and stores for the Kafka wire format (cf. asyncpg's hton.h).
 * memcpy with a constant size compiles to one unaligned move plus a byte swap. */
#ifndef FP_BYTES_H
#define FP_BYTES_H

#include <stdint.h>
#include <string.h>

static inline void fp_put_u16(char *p, uint16_t v) { v = __builtin_bswap16(v); memcpy(p, &v, 2); }
static inline void fp_put_u32(char *p, uint32_t v) { v = __builtin_bswap32(v); memcpy(p, &v, 4); }
static inline void fp_put_u64(char *p, uint64_t v) { v = __builtin_bswap64(v); memcpy(p, &v, 8); }

static inline uint16_t fp_get_u16(const char *p) { uint16_t v; memcpy(&v, p, 2); return __builtin_bswap16(v); }
static inline uint32_t fp_get_u32(const char *p) { uint32_t v; memcpy(&v, p, 4); return __builtin_bswap32(v); }
static inline uint64_t fp_get_u64(const char *p) { uint64_t v; memcpy(&v, p, 8); return __builtin_bswap64(v); }

#endif
