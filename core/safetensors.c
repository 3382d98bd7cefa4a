// safetensors.c — reading (mmap'd, single file or sharded index) and writing (streamed, atomic)
// safetensors files (format: ../shared/reference/formats.md). The reader checks the whole header up
// front — dtypes, shapes, offsets, overlaps, duplicate names — so every tensor it hands out lies
// inside its file; each failure names the file and, where there is one, the tensor. Tensor data
// points straight into the mapping: it is 8-byte aligned only when the writer aligned it (ours and
// HF's pad the header to 8, but offsets follow the tensor sizes), so readers of odd-sized dtypes
// must not assume more than byte alignment.
// Not here: dtype conversion (dtype.c), model-specific name mapping or shape expectations (the model
// loaders ask for those through t2_st_get_shape), and any caching beyond the mapping itself.
#include "core/safetensors.h"
#include "core/error.h"
#include "core/util.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; t2 supports little-endian hosts only"
#endif

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)   // the format's 100 MB limit
#define ST_MAX_INT 9007199254740992.0                  // 2^53: largest integer a JSON double keeps

// ---------------------------------------------------------------------------------------------
// Reader

typedef struct {
    char *path;            // as opened (messages, t2_st_tensor.file)
    void *map;             // whole file, read-only
    size_t size;
    cJSON *header;         // parsed header; tensor names point into it
    const cJSON *meta;     // its "__metadata__" object or NULL
} st_file;

struct t2_st {
    char *path;            // what t2_st_open was given
    st_file *files;
    int nfiles;
    t2_st_tensor *tensors; // sorted by name
    int ntensors, cap;
};

// Move the first OLD bytes of P into a new block of N bytes (out of memory aborts, as t2_malloc).
static void *grow(void *p, size_t old, size_t n) {
    void *q = t2_malloc(n);
    if (old) memcpy(q, p, old);
    free(p);
    return q;
}

static void fmt_shape(char *out, size_t cap, int ndim, const int64_t *shape) {
    size_t n = 0;
    n += (size_t)snprintf(out + n, cap - n, "[");
    for (int i = 0; i < ndim && n < cap; i++) {
        if (shape[i] < 0) n += (size_t)snprintf(out + n, cap - n, "%s*", i ? ", " : "");
        else n += (size_t)snprintf(out + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    if (n < cap) snprintf(out + n, cap - n, "]");
}

// A JSON number that is a non-negative integer ≤ 2^53. 0 ok; -1 negative; -2 not an integer/too big.
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -2;
    double d = v->valuedouble;
    if (d < 0) return -1;
    if (!(d == floor(d)) || d > ST_MAX_INT) return -2;
    *out = (uint64_t)d;
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const t2_st_tensor *)a)->name, ((const t2_st_tensor *)b)->name);
}

// Parse one tensor entry E called NAME of file F into T. DATALEN is the size of the data region.
static int parse_entry(const st_file *f, const cJSON *e, const char *name, uint64_t datalen,
                       t2_st_tensor *t, uint64_t *begin_out) {
    const char *p = f->path;
    if (!cJSON_IsObject(e)) return t2_fail("%s: tensor '%s': entry is not a JSON object", p, name);

    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!jd) return t2_fail("%s: tensor '%s': no \"dtype\"", p, name);
    if (!cJSON_IsString(jd)) return t2_fail("%s: tensor '%s': \"dtype\" is not a string", p, name);
    int dt = t2_dtype_parse(jd->valuestring);
    if (dt < 0) return t2_fail("%s: tensor '%s': unknown dtype \"%s\"", p, name, jd->valuestring);

    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!js) return t2_fail("%s: tensor '%s': no \"shape\"", p, name);
    if (!cJSON_IsArray(js)) return t2_fail("%s: tensor '%s': \"shape\" is not an array", p, name);
    int ndim = cJSON_GetArraySize(js);
    if (ndim > T2_ST_MAX_DIMS)
        return t2_fail("%s: tensor '%s': %d dimensions, at most %d supported", p, name, ndim, T2_ST_MAX_DIMS);
    uint64_t numel = 1;
    int overflow = 0, i = 0;
    const cJSON *jv;
    cJSON_ArrayForEach(jv, js) {
        uint64_t d;
        int rc = json_uint(jv, &d);
        if (rc == -1) return t2_fail("%s: tensor '%s': shape[%d] is negative", p, name, i);
        if (rc == -2) return t2_fail("%s: tensor '%s': shape[%d] is not an integer in [0, 2^53]", p, name, i);
        t->shape[i++] = (int64_t)d;
        if (__builtin_mul_overflow(numel, d, &numel)) overflow = 1;
    }
    t->ndim = ndim;
    char sh[256];
    fmt_shape(sh, sizeof sh, ndim, t->shape);
    uint64_t esize = t2_dtype_size((t2_dtype)dt), need;
    if (overflow || numel > (uint64_t)INT64_MAX || __builtin_mul_overflow(numel, esize, &need))
        return t2_fail("%s: tensor '%s': shape %s of %s overflows 64 bits", p, name, sh, jd->valuestring);

    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!jo) return t2_fail("%s: tensor '%s': no \"data_offsets\"", p, name);
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return t2_fail("%s: tensor '%s': \"data_offsets\" is not an array of two integers", p, name);
    uint64_t b, en;
    if (json_uint(cJSON_GetArrayItem(jo, 0), &b) != 0 || json_uint(cJSON_GetArrayItem(jo, 1), &en) != 0)
        return t2_fail("%s: tensor '%s': \"data_offsets\" are not non-negative integers", p, name);
    if (en < b)
        return t2_fail("%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", p, name,
                       (unsigned long long)b, (unsigned long long)en);
    if (en - b != need)
        return t2_fail("%s: tensor '%s': data_offsets [%llu, %llu] span %llu bytes but shape %s of %s needs %llu",
                       p, name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)(en - b),
                       sh, jd->valuestring, (unsigned long long)need);
    if (en > datalen)
        return t2_fail("%s: tensor '%s': data_offsets [%llu, %llu] run past the %llu bytes of data", p, name,
                       (unsigned long long)b, (unsigned long long)en, (unsigned long long)datalen);

    t->name = name;
    t->dtype = (t2_dtype)dt;
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)need;
    t->file = f->path;
    *begin_out = b;
    return 0;
}

static int check_metadata(const st_file *f, const cJSON *m) {
    if (!cJSON_IsObject(m)) return t2_fail("%s: __metadata__ is not a JSON object", f->path);
    const cJSON *v;
    cJSON_ArrayForEach(v, m)
        if (!cJSON_IsString(v))
            return t2_fail("%s: __metadata__ entry '%s' is not a string", f->path, v->string);
    return 0;
}

typedef struct { uint64_t begin; int idx; } st_span;

static int by_begin(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->idx - y->idx;
}

// Map PATH into F and append its tensors to ST (unsorted). The header is validated whole.
static int load_file(t2_st *st, st_file *f, const char *path) {
    f->path = t2_strdup(path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return t2_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) { close(fd); return t2_fail("%s: not a regular file", path); }
    if (sb.st_size < 8) {
        close(fd);
        return t2_fail("%s: file is %lld bytes, too short for the 8-byte header length", path, (long long)sb.st_size);
    }
    f->size = (size_t)sb.st_size;
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (m == MAP_FAILED) return t2_fail("%s: cannot mmap: %s", path, strerror(err));
    f->map = m;

    const unsigned char *base = m;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | base[i];
    if (n > ST_MAX_HEADER)
        return t2_fail("%s: header length %llu is over the 100 MB limit (not a safetensors file?)", path,
                       (unsigned long long)n);
    if (n > f->size - 8)
        return t2_fail("%s: header length %llu runs past the end of the %zu-byte file (truncated?)", path,
                       (unsigned long long)n, f->size);
    uint64_t datalen = f->size - 8 - n;

    // Parse a NUL-terminated copy: cJSON then never reads past the header, and a NUL byte inside
    // the header ends the JSON early and is caught as trailing garbage below.
    char *text = t2_malloc((size_t)n + 1);
    memcpy(text, base + 8, (size_t)n);
    text[n] = 0;
    const char *end = NULL;
    f->header = cJSON_ParseWithLengthOpts(text, (size_t)n, &end, 0);
    if (!f->header) {
        long off = end ? (long)(end - text) : -1;
        free(text);
        return t2_fail("%s: header is not valid JSON (near byte %ld of %llu)", path, off, (unsigned long long)n);
    }
    for (const char *q = end; q < text + n; q++)
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
            long off = (long)(q - text);
            free(text);
            return t2_fail("%s: header has bytes after its JSON object (at byte %ld of %llu)", path, off,
                           (unsigned long long)n);
        }
    free(text);
    if (!cJSON_IsObject(f->header)) return t2_fail("%s: header is not a JSON object", path);

    int count = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, f->header) count++;
    if (st->ntensors + count > st->cap) {
        size_t old = (size_t)st->ntensors * sizeof *st->tensors;
        st->cap = st->ntensors + count + 16;
        st->tensors = grow(st->tensors, old, (size_t)st->cap * sizeof *st->tensors);
    }
    st_span *spans = t2_malloc((size_t)(count ? count : 1) * sizeof *spans);
    int first = st->ntensors, nt = 0;
    const unsigned char *data = base + 8 + n;
    cJSON_ArrayForEach(e, f->header) {
        const char *name = e->string ? e->string : "";
        if (strcmp(name, "__metadata__") == 0) {
            if (f->meta) { free(spans); return t2_fail("%s: __metadata__ appears twice", path); }
            if (check_metadata(f, e) != 0) { free(spans); return -1; }
            f->meta = e;
            continue;
        }
        t2_st_tensor *t = &st->tensors[first + nt];
        memset(t, 0, sizeof *t);
        uint64_t b = 0;
        if (parse_entry(f, e, name, datalen, t, &b) != 0) { free(spans); return -1; }
        t->data = data + b;
        spans[nt].begin = b;
        spans[nt].idx = first + nt;
        nt++;
    }
    st->ntensors = first + nt;

    // Overlaps: sort by begin; each tensor must end at or before the next one begins. Empty tensors
    // occupy no bytes and may sit anywhere in range (even inside another tensor). Holes between
    // tensors (and unused bytes after the last one) are tolerated: the format says there are none,
    // but they are harmless to a reader, and some writers align tensors.
    qsort(spans, (size_t)nt, sizeof *spans, by_begin);
    int prev = -1;
    for (int i = 0; i < nt; i++) {
        const t2_st_tensor *c = &st->tensors[spans[i].idx];
        if (c->nbytes == 0) continue;
        if (prev >= 0) {
            const t2_st_tensor *a = &st->tensors[spans[prev].idx];
            uint64_t aend = spans[prev].begin + a->nbytes;
            if (aend > spans[i].begin) {
                int rc = t2_fail("%s: tensor '%s' (data_offsets [%llu, %llu]) overlaps tensor '%s' (data_offsets [%llu, %llu])",
                                 path, a->name, (unsigned long long)spans[prev].begin, (unsigned long long)aend,
                                 c->name, (unsigned long long)spans[i].begin,
                                 (unsigned long long)(spans[i].begin + c->nbytes));
                free(spans);
                return rc;
            }
        }
        prev = i;
    }
    free(spans);
    return 0;
}

// Sort ST's tensors by name and refuse duplicates (cJSON keeps duplicate keys; shards may repeat).
static int sort_and_check(t2_st *st) {
    if (st->ntensors > 1) qsort(st->tensors, (size_t)st->ntensors, sizeof *st->tensors, by_name);
    for (int i = 1; i < st->ntensors; i++) {
        const t2_st_tensor *a = &st->tensors[i - 1], *b = &st->tensors[i];
        if (strcmp(a->name, b->name) != 0) continue;
        if (a->file == b->file) return t2_fail("%s: tensor '%s' appears twice in the header", a->file, a->name);
        return t2_fail("%s: tensor '%s' is in both %s and %s", st->path, a->name, a->file, b->file);
    }
    return 0;
}

static t2_st *st_new(const char *path, int nfiles) {
    t2_st *st = t2_calloc(1, sizeof *st);
    st->path = t2_strdup(path);
    st->files = t2_calloc((size_t)nfiles, sizeof *st->files);
    st->nfiles = nfiles;
    return st;
}

static t2_st *open_single(const char *path) {
    t2_st *st = st_new(path, 1);
    if (load_file(st, &st->files[0], path) != 0 || sort_and_check(st) != 0) { t2_st_close(st); return NULL; }
    return st;
}

static int by_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static t2_st *open_index(const char *path) {
    cJSON *idx = t2_json_load(path);
    if (!idx) return NULL;
    t2_st *st = NULL;
    const char **names = NULL, **shards = NULL;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
    if (!cJSON_IsObject(idx) || !cJSON_IsObject(wm)) {
        t2_fail("%s: no \"weight_map\" object (not a safetensors index?)", path);
        goto fail;
    }
    int n = cJSON_GetArraySize(wm);
    names = t2_malloc((size_t)(n ? n : 1) * sizeof *names);
    shards = t2_malloc((size_t)(n ? n : 1) * sizeof *shards);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        const char *s = cJSON_IsString(e) ? e->valuestring : NULL;
        if (!s || !*s || strchr(s, '/')) {
            t2_fail("%s: weight_map entry for tensor '%s' is not a shard file name in the same directory",
                    path, e->string ? e->string : "");
            goto fail;
        }
        names[i] = e->string ? e->string : "";
        shards[i++] = s;
    }
    qsort(names, (size_t)n, sizeof *names, by_str);
    for (i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            t2_fail("%s: weight_map lists tensor '%s' twice", path, names[i]);
            goto fail;
        }
    qsort(shards, (size_t)n, sizeof *shards, by_str);
    int ns = 0;
    for (i = 0; i < n; i++)
        if (ns == 0 || strcmp(shards[ns - 1], shards[i]) != 0) shards[ns++] = shards[i];
    if (ns == 0) { t2_fail("%s: weight_map is empty", path); goto fail; }

    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else snprintf(dir, sizeof dir, ".");
    if (slash == path) snprintf(dir, sizeof dir, "/");

    // Shards in name order, so files[0] (whose __metadata__ t2_st_metadata reads) is the first one.
    st = st_new(path, ns);
    for (i = 0; i < ns; i++) {
        char sp[4096];
        if (t2_path_join(sp, sizeof sp, dir, shards[i]) != 0) goto fail;
        if (load_file(st, &st->files[i], sp) != 0) goto fail;
    }
    if (sort_and_check(st) != 0) goto fail;

    // Every tensor the map lists must be in the shard it names. Shard tensors the map does not list
    // are kept (some writers leave tied or buffer tensors out of the map).
    cJSON_ArrayForEach(e, wm) {
        const t2_st_tensor *t = t2_st_find(st, e->string);
        const char *want = e->valuestring;
        if (!t) {
            t2_fail("%s: tensor '%s' is in the weight_map but not in its shard %s", path, e->string, want);
            goto fail;
        }
        const char *base = strrchr(t->file, '/');
        base = base ? base + 1 : t->file;
        if (strcmp(base, want) != 0) {
            t2_fail("%s: tensor '%s' is in the weight_map under shard %s but lives in %s", path, e->string,
                    want, t->file);
            goto fail;
        }
    }
    free(names);
    free(shards);
    cJSON_Delete(idx);
    return st;
fail:
    free(names);
    free(shards);
    cJSON_Delete(idx);
    t2_st_close(st);
    return NULL;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static t2_st *open_dir(const char *dir) {
    char p[4096];
    if (t2_path_join(p, sizeof p, dir, "model.safetensors.index.json") != 0) return NULL;
    if (t2_file_exists(p)) return open_index(p);
    if (t2_path_join(p, sizeof p, dir, "model.safetensors") != 0) return NULL;
    if (t2_file_exists(p)) return open_single(p);
    DIR *d = opendir(dir);
    if (!d) return t2_fail_null("%s: cannot list: %s", dir, strerror(errno));
    int found = 0;
    char only[4096] = "";
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!ends_with(de->d_name, ".safetensors")) continue;
        char q[4096];
        if (t2_path_join(q, sizeof q, dir, de->d_name) != 0 || !t2_file_exists(q)) continue;
        if (found++ == 0) snprintf(only, sizeof only, "%s", q);
    }
    closedir(d);
    if (found == 0)
        return t2_fail_null("%s: no model.safetensors.index.json, model.safetensors or other *.safetensors file", dir);
    if (found > 1)
        return t2_fail_null("%s: %d *.safetensors files and no model.safetensors.index.json saying how they fit together",
                            dir, found);
    return open_single(only);
}

t2_st *t2_st_open(const char *path) {
    if (t2_is_dir(path)) return open_dir(path);
    if (ends_with(path, ".json")) return open_index(path);
    return open_single(path);
}

void t2_st_close(t2_st *st) {
    if (!st) return;
    for (int i = 0; i < st->nfiles; i++) {
        st_file *f = &st->files[i];
        if (f->map) munmap(f->map, f->size);
        cJSON_Delete(f->header);
        free(f->path);
    }
    free(st->files);
    free(st->tensors);
    free(st->path);
    free(st);
}

int t2_st_count(const t2_st *st) { return st->ntensors; }

const t2_st_tensor *t2_st_at(const t2_st *st, int i) {
    T2_ASSERT(i >= 0 && i < st->ntensors);
    return &st->tensors[i];
}

const t2_st_tensor *t2_st_find(const t2_st *st, const char *name) {
    int lo = 0, hi = st->ntensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(name, st->tensors[mid].name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) hi = mid - 1; else lo = mid + 1;
    }
    return NULL;
}

const t2_st_tensor *t2_st_get(const t2_st *st, const char *name) {
    const t2_st_tensor *t = t2_st_find(st, name);
    if (!t) return t2_fail_null("%s: tensor '%s' not found", st->path, name);
    return t;
}

const t2_st_tensor *t2_st_get_shape(const t2_st *st, const char *name, int ndim, const int64_t *shape) {
    const t2_st_tensor *t = t2_st_get(st, name);
    if (!t) return NULL;
    int ok = t->ndim == ndim;
    for (int i = 0; ok && shape && i < ndim; i++)
        if (shape[i] >= 0 && shape[i] != t->shape[i]) ok = 0;
    if (ok) return t;
    char want[256], have[256];
    if (shape) fmt_shape(want, sizeof want, ndim, shape);
    else snprintf(want, sizeof want, "%d dimensions", ndim);
    fmt_shape(have, sizeof have, t->ndim, t->shape);
    return t2_fail_null("%s: tensor '%s' has shape %s, expected %s", t->file, name, have, want);
}

const char *t2_st_metadata(const t2_st *st, const char *key) {
    if (st->nfiles == 0 || !st->files[0].meta) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(st->files[0].meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// ---------------------------------------------------------------------------------------------
// Writer

typedef struct {
    char *name;
    t2_dtype dtype;
    int ndim;
    int64_t shape[T2_ST_MAX_DIMS];
    void *data;            // copy of the caller's data
    size_t nbytes;
} st_entry;

struct t2_st_writer {
    st_entry *t;
    int n, cap;
    char **keys, **vals;
    int nmeta, metacap;
};

t2_st_writer *t2_st_writer_new(void) { return t2_calloc(1, sizeof(t2_st_writer)); }

int t2_st_writer_add(t2_st_writer *w, const char *name, t2_dtype dtype, int ndim,
                     const int64_t *shape, const void *data) {
    if (!name || !*name || strcmp(name, "__metadata__") == 0)
        return t2_fail("safetensors writer: invalid tensor name '%s'", name ? name : "(null)");
    if ((int)dtype < 0 || dtype >= T2_DTYPE_COUNT)
        return t2_fail("safetensors writer: tensor '%s': invalid dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > T2_ST_MAX_DIMS)
        return t2_fail("safetensors writer: tensor '%s': %d dimensions (0..%d allowed)", name, ndim, T2_ST_MAX_DIMS);
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return t2_fail("safetensors writer: tensor '%s': shape[%d] = %lld is negative", name, i,
                                         (long long)shape[i]);
        if (__builtin_mul_overflow(numel, (uint64_t)shape[i], &numel) || numel > (uint64_t)ST_MAX_INT)
            return t2_fail("safetensors writer: tensor '%s': too many elements", name);
    }
    uint64_t nbytes = numel * t2_dtype_size(dtype);
    if (nbytes > 0 && !data) return t2_fail("safetensors writer: tensor '%s': no data", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0) return t2_fail("safetensors writer: tensor '%s' added twice", name);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->t = grow(w->t, (size_t)w->n * sizeof *w->t, (size_t)w->cap * sizeof *w->t);
    }
    st_entry *e = &w->t[w->n++];
    memset(e, 0, sizeof *e);
    e->name = t2_strdup(name);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->nbytes = (size_t)nbytes;
    e->data = t2_malloc(e->nbytes);
    if (e->nbytes) memcpy(e->data, data, e->nbytes);
    return 0;
}

int t2_st_writer_meta(t2_st_writer *w, const char *key, const char *value) {
    if (!key || !value) return t2_fail("safetensors writer: metadata key and value must not be NULL");
    for (int i = 0; i < w->nmeta; i++)
        if (strcmp(w->keys[i], key) == 0) { free(w->vals[i]); w->vals[i] = t2_strdup(value); return 0; }
    if (w->nmeta == w->metacap) {
        w->metacap = w->metacap ? 2 * w->metacap : 8;
        w->keys = grow(w->keys, (size_t)w->nmeta * sizeof *w->keys, (size_t)w->metacap * sizeof *w->keys);
        w->vals = grow(w->vals, (size_t)w->nmeta * sizeof *w->vals, (size_t)w->metacap * sizeof *w->vals);
    }
    w->keys[w->nmeta] = t2_strdup(key);
    w->vals[w->nmeta++] = t2_strdup(value);
    return 0;
}

// The header JSON (unpadded, malloc'd). Integers go in as raw text so large offsets never turn into
// floating-point notation.
static char *build_header(const t2_st_writer *w) {
    cJSON *h = cJSON_CreateObject();
    if (w->nmeta) {
        cJSON *m = cJSON_AddObjectToObject(h, "__metadata__");
        for (int i = 0; i < w->nmeta; i++) cJSON_AddStringToObject(m, w->keys[i], w->vals[i]);
    }
    uint64_t off = 0;
    char num[32];
    for (int i = 0; i < w->n; i++) {
        const st_entry *e = &w->t[i];
        cJSON *o = cJSON_AddObjectToObject(h, e->name);
        cJSON_AddStringToObject(o, "dtype", t2_dtype_name(e->dtype));
        cJSON *s = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof num, "%lld", (long long)e->shape[d]);
            cJSON_AddItemToArray(s, cJSON_CreateRaw(num));
        }
        cJSON *os = cJSON_AddArrayToObject(o, "data_offsets");
        snprintf(num, sizeof num, "%llu", (unsigned long long)off);
        cJSON_AddItemToArray(os, cJSON_CreateRaw(num));
        off += e->nbytes;
        snprintf(num, sizeof num, "%llu", (unsigned long long)off);
        cJSON_AddItemToArray(os, cJSON_CreateRaw(num));
    }
    char *text = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    return text;
}

int t2_st_writer_write(t2_st_writer *w, const char *path) {
    char *json = build_header(w);
    if (!json) return t2_fail("%s: out of memory building the safetensors header", path);
    size_t jlen = strlen(json), hlen = (jlen + 7) & ~(size_t)7;   // padded with spaces to 8
    if (hlen > ST_MAX_HEADER) {
        free(json);
        return t2_fail("%s: safetensors header would be %zu bytes, over the 100 MB limit", path, hlen);
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        free(json);
        return t2_fail("%s: path too long", path);
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        free(json);
        return t2_fail("%s: cannot create %s: %s", path, tmp, strerror(e));
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(json, 1, jlen, f) == jlen;
    for (size_t i = jlen; ok && i < hlen; i++) ok = fputc(' ', f) != EOF;
    free(json);
    for (int i = 0; ok && i < w->n; i++)
        ok = fwrite(w->t[i].data, 1, w->t[i].nbytes, f) == w->t[i].nbytes;
    int e = errno;
    if (ok && fflush(f) != 0) { ok = 0; e = errno; }
    if (ok && fsync(fileno(f)) != 0) { ok = 0; e = errno; }
    if (fclose(f) != 0 && ok) { ok = 0; e = errno; }
    if (!ok) {
        unlink(tmp);
        return t2_fail("%s: write failed: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return t2_fail("%s: cannot rename into place: %s", path, strerror(e));
    }
    // Make the rename itself durable (best effort: some file systems refuse fsync on directories).
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    else snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { (void)fsync(dfd); close(dfd); }
    return 0;
}

void t2_st_writer_free(t2_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) { free(w->t[i].name); free(w->t[i].data); }
    for (int i = 0; i < w->nmeta; i++) { free(w->keys[i]); free(w->vals[i]); }
    free(w->t);
    free(w->keys);
    free(w->vals);
    free(w);
}
