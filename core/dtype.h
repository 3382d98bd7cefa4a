// dtype.h — element types of stored tensors and the f16/bf16 <-> f32 conversions.
// Compute is always f32; weights may stay in their stored type and are widened on the fly.
#ifndef T2_DTYPE_H
#define T2_DTYPE_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum {
    T2_DTYPE_F32, T2_DTYPE_F16, T2_DTYPE_BF16, T2_DTYPE_F64,
    T2_DTYPE_I64, T2_DTYPE_I32, T2_DTYPE_I16, T2_DTYPE_I8, T2_DTYPE_U8, T2_DTYPE_BOOL,
    T2_DTYPE_COUNT
} t2_dtype;

// Contract: bytes per element.
size_t t2_dtype_size(t2_dtype dt);
// Contract: safetensors name ("F32", "BF16", ...).
const char *t2_dtype_name(t2_dtype dt);
// Contract: parse a safetensors dtype name; -1 if unknown.
int t2_dtype_parse(const char *name);

static inline float t2_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
// Round to nearest even, as torch does; NaN stays NaN.
static inline uint16_t t2_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
float t2_f16_to_f32(uint16_t h);
uint16_t t2_f32_to_f16(float f);

// Contract: dst(n) = src(n) widened from dt to f32 (dt one of F32, F16, BF16).
void t2_to_f32(float *dst, const void *src, t2_dtype dt, size_t n);
// Contract: dst(n) in dt (F32, F16, BF16) = src(n) narrowed with round-to-nearest-even.
void t2_from_f32(void *dst, const float *src, t2_dtype dt, size_t n);

#endif
