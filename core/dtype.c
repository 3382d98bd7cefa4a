// dtype.c — dtype names/sizes and the scalar half-precision conversions (IEEE 754 binary16).
#include "core/dtype.h"
#include "core/error.h"

static const struct { const char *name; size_t size; } info[T2_DTYPE_COUNT] = {
    [T2_DTYPE_F32] = {"F32", 4}, [T2_DTYPE_F16] = {"F16", 2}, [T2_DTYPE_BF16] = {"BF16", 2},
    [T2_DTYPE_F64] = {"F64", 8}, [T2_DTYPE_I64] = {"I64", 8}, [T2_DTYPE_I32] = {"I32", 4},
    [T2_DTYPE_I16] = {"I16", 2}, [T2_DTYPE_I8] = {"I8", 1},   [T2_DTYPE_U8] = {"U8", 1},
    [T2_DTYPE_BOOL] = {"BOOL", 1},
};

size_t t2_dtype_size(t2_dtype dt) { T2_ASSERT(dt >= 0 && dt < T2_DTYPE_COUNT); return info[dt].size; }
const char *t2_dtype_name(t2_dtype dt) { T2_ASSERT(dt >= 0 && dt < T2_DTYPE_COUNT); return info[dt].name; }

int t2_dtype_parse(const char *name) {
    for (int i = 0; i < T2_DTYPE_COUNT; i++)
        if (strcmp(name, info[i].name) == 0) return i;
    return -1;
}

float t2_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else { // subnormal: normalise
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) u = sign | 0x7f800000u | (man << 13);
    else u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t t2_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00);         // NaN
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);        // overflow -> inf
    if (a < 0x38800000u) {                                          // subnormal or zero
        if (a < 0x33000000u) return (uint16_t)sign;
        uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;                                   // 14..24
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - 0x38000000u;      // rebias + round to nearest even
    return (uint16_t)(sign | (r >> 13));
}

void t2_to_f32(float *dst, const void *src, t2_dtype dt, size_t n) {
    switch (dt) {
    case T2_DTYPE_F32: memcpy(dst, src, n * 4); break;
    // SRC may sit at any byte offset in a safetensors mapping: each element is read through memcpy
    case T2_DTYPE_F16: { const char *s = src; uint16_t h; for (size_t i = 0; i < n; i++) memcpy(&h, s + 2 * i, 2), dst[i] = t2_f16_to_f32(h); break; }
    case T2_DTYPE_BF16: { const char *s = src; uint16_t h; for (size_t i = 0; i < n; i++) memcpy(&h, s + 2 * i, 2), dst[i] = t2_bf16_to_f32(h); break; }
    default: T2_ASSERT(!"t2_to_f32: not a float dtype");
    }
}

void t2_from_f32(void *dst, const float *src, t2_dtype dt, size_t n) {
    switch (dt) {
    case T2_DTYPE_F32: memcpy(dst, src, n * 4); break;
    case T2_DTYPE_F16: { char *d = dst; for (size_t i = 0; i < n; i++) { uint16_t h = t2_f32_to_f16(src[i]); memcpy(d + 2 * i, &h, 2); } break; }
    case T2_DTYPE_BF16: { char *d = dst; for (size_t i = 0; i < n; i++) { uint16_t h = t2_f32_to_bf16(src[i]); memcpy(d + 2 * i, &h, 2); } break; }
    default: T2_ASSERT(!"t2_from_f32: not a float dtype");
    }
}
