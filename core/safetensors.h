// safetensors.h — read (mmap, single file or sharded index) and write (atomic) safetensors files.
// Format: ../shared/reference/formats.md. Reading validates the whole header up front, so a tensor
// handed out is always in bounds; every failure names the file and, where there is one, the tensor.
#ifndef T2_SAFETENSORS_H
#define T2_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "core/dtype.h"

#define T2_ST_MAX_DIMS 8

typedef struct {
    const char *name;
    t2_dtype dtype;
    int ndim;
    int64_t shape[T2_ST_MAX_DIMS];
    int64_t numel;
    const void *data;   // points into the read-only mapping
    size_t nbytes;
    const char *file;   // the file it lives in (for messages)
} t2_st_tensor;

typedef struct t2_st t2_st;   // one or more mapped files seen as one set of tensors

// Contract: open PATH = a .safetensors file, a model.safetensors.index.json, or a directory holding
// either (index preferred). NULL + t2_last_error() naming the file/tensor on any malformation.
t2_st *t2_st_open(const char *path);
void t2_st_close(t2_st *st);
// Contract: number of tensors across all files, and the i-th (sorted by name).
int t2_st_count(const t2_st *st);
const t2_st_tensor *t2_st_at(const t2_st *st, int i);
// Contract: the tensor called NAME or NULL (no error set; use t2_st_get for that).
const t2_st_tensor *t2_st_find(const t2_st *st, const char *name);
// Contract: the tensor NAME; NULL + error "FILE: tensor NAME not found" when absent.
const t2_st_tensor *t2_st_get(const t2_st *st, const char *name);
// Contract: like t2_st_get, and also checks ndim/shape (shape entries < 0 match anything);
// NULL + an error naming the tensor, the expected and the actual shape.
const t2_st_tensor *t2_st_get_shape(const t2_st *st, const char *name, int ndim, const int64_t *shape);
// Contract: value of __metadata__[KEY] of the (first) file, or NULL.
const char *t2_st_metadata(const t2_st *st, const char *key);

// Writer: collect tensors (data is copied), metadata strings, then write atomically (temp + rename).
typedef struct t2_st_writer t2_st_writer;
t2_st_writer *t2_st_writer_new(void);
// Contract: add tensor NAME; DATA holds numel(shape) elements of DTYPE. -1 on duplicate name.
int t2_st_writer_add(t2_st_writer *w, const char *name, t2_dtype dtype, int ndim,
                     const int64_t *shape, const void *data);
int t2_st_writer_meta(t2_st_writer *w, const char *key, const char *value);
// Contract: write PATH atomically (PATH.tmp.<pid> then rename); 0 or -1 naming PATH.
int t2_st_writer_write(t2_st_writer *w, const char *path);
void t2_st_writer_free(t2_st_writer *w);

#endif
