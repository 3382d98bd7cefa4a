// svf.c — the SVD cache of SVF (Transformer² §3.1): which matrices are targeted, the weights'
// fingerprint, the reduced SVD (LAPACKE), the resumable decomposition into one safetensors file, and
// loading it back (mmap'd, checked against the weights). Not here: experts, recomposition and the
// adapter (expert.c), the trainer. File formats: docs/svf.md.
#include "svf/svf.h"
#include "core/error.h"
#include "core/kernels.h"
#include "core/pool.h"
#include "core/util.h"
#include "language/lm_train.h"
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// The seven linear layers of a decoder layer, in t2_lm_linear's order.
static const char *const SUFFIX[7] = {
    "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
    "self_attn.o_proj.weight", "mlp.gate_proj.weight",    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
};

static int targeted(int targets, int which) {
    return which >= T2_LIN_GATE ? (targets & T2_SVF_MLP) != 0 : (targets & T2_SVF_ATTN) != 0;
}

int t2_svf_targets_parse(const char *s) {
    if (s && !strcmp(s, "mlp")) return T2_SVF_MLP;
    if (s && !strcmp(s, "attn")) return T2_SVF_ATTN;
    if (s && !strcmp(s, "all")) return T2_SVF_ALL;
    return t2_fail("unknown SVF targets '%s' (mlp, attn or all)", s ? s : "(null)");
}

const char *t2_svf_targets_name(int t) {
    return t == T2_SVF_MLP ? "mlp" : t == T2_SVF_ATTN ? "attn" : t == T2_SVF_ALL ? "all" : "?";
}

int t2_svf_param_parse(const char *s) {
    if (s && !strcmp(s, "official")) return T2_SVF_PARAM_OFFICIAL;
    if (s && !strcmp(s, "scale")) return T2_SVF_PARAM_SCALE;
    return t2_fail("unknown SVF parameterisation '%s' (official or scale)", s ? s : "(null)");
}

const char *t2_svf_param_name(int p) { return p == T2_SVF_PARAM_SCALE ? "scale" : "official"; }

// ---------------------------------------------------------------------------------------------
// The plan: every targeted matrix of the checkpoint in canonical order (layer, then q k v o gate up down).

typedef struct {
    char name[160];
    int layer, which, rows, cols;
    const t2_st_tensor *t;
} plan_entry;

// Lists the targeted matrices of ST into *OUT (malloc'd); returns their count or -1 + error.
static int make_plan(const t2_st *st, int targets, plan_entry **out, const char **prefix_out) {
    const char *prefix, *head;
    if (t2_lm_find_layout(st, &prefix, &head)) return -1;
    if (prefix_out) *prefix_out = prefix;
    int n = 0, cap = 0;
    plan_entry *p = NULL;
    for (int l = 0;; l++) {
        char probe[200];
        snprintf(probe, sizeof probe, "%slayers.%d.", prefix, l);
        int any = 0;
        for (int w = 0; w < 7 && !any; w++) {
            char nm[200];
            snprintf(nm, sizeof nm, "%s%s", probe, SUFFIX[w]);
            any = t2_st_find(st, nm) != NULL;
        }
        if (!any) break;
        for (int w = 0; w < 7; w++) {
            if (!targeted(targets, w)) continue;
            if (n == cap) { cap = cap ? 2 * cap : 64; p = t2_realloc(p, (size_t)cap * sizeof *p); }
            plan_entry *e = &p[n];
            snprintf(e->name, sizeof e->name, "%slayers.%d.%s", prefix, l, SUFFIX[w]);
            const t2_st_tensor *t = t2_st_get(st, e->name);
            if (!t) { free(p); return -1; }
            if (t->ndim != 2 || (t->dtype != T2_DTYPE_F32 && t->dtype != T2_DTYPE_F16 && t->dtype != T2_DTYPE_BF16)) {
                t2_fail("%s: tensor '%s' is not a 2-D F32/F16/BF16 matrix", t->file, e->name);
                free(p);
                return -1;
            }
            e->layer = l, e->which = w, e->t = t;
            e->rows = (int)t->shape[0], e->cols = (int)t->shape[1];
            n++;
        }
    }
    if (n == 0) { free(p); return t2_fail("no decoder layers with %s matrices found (prefix '%s')", t2_svf_targets_name(targets), prefix); }
    *out = p;
    return n;
}

// ---------------------------------------------------------------------------------------------
// Fingerprint: FNV-1a 64. Per tensor over its bytes as little-endian u64 words (tail bytewise, in
// parallel); then over (dtype, rows, cols, tensor hash) of every matrix in plan order.

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv_bytes(uint64_t h, const void *data, size_t n) {
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= FNV_PRIME; }
    return h;
}

static uint64_t fnv_words(const void *data, size_t n) {
    uint64_t h = FNV_OFFSET;
    const unsigned char *b = data;
    size_t nw = n / 8;
    for (size_t i = 0; i < nw; i++) {
        uint64_t w;
        memcpy(&w, b + 8 * i, 8);
        h ^= w;
        h *= FNV_PRIME;
    }
    return fnv_bytes(h, b + 8 * nw, n - 8 * nw);
}

typedef struct { const plan_entry *p; uint64_t *h; } hash_job;

static void hash_task(void *ctx, int i, int thread) {
    hash_job *j = ctx;
    j->h[i] = fnv_words(j->p[i].t->data, j->p[i].t->nbytes);
}

static uint64_t plan_fingerprint(const plan_entry *p, int n, t2_pool *pool) {
    uint64_t *h = t2_malloc((size_t)n * sizeof *h);
    hash_job j = {p, h};
    t2_pool_run(pool, n, hash_task, &j);
    uint64_t fp = FNV_OFFSET;
    for (int i = 0; i < n; i++) {
        unsigned char rec[25];
        uint64_t rows = (uint64_t)p[i].rows, cols = (uint64_t)p[i].cols;
        rec[0] = (unsigned char)p[i].t->dtype;
        for (int b = 0; b < 8; b++) {
            rec[1 + b] = (unsigned char)(rows >> (8 * b));
            rec[9 + b] = (unsigned char)(cols >> (8 * b));
            rec[17 + b] = (unsigned char)(h[i] >> (8 * b));
        }
        fp = fnv_bytes(fp, rec, sizeof rec);
    }
    free(h);
    return fp;
}

int t2_svf_fingerprint(const t2_st *weights, int targets, t2_pool *pool, uint64_t *fp) {
    plan_entry *p;
    int n = make_plan(weights, targets, &p, NULL);
    if (n < 0) return -1;
    *fp = plan_fingerprint(p, n, pool);
    free(p);
    return 0;
}

static void fp_hex(char out[17], uint64_t fp) { snprintf(out, 17, "%016" PRIx64, fp); }

// ---------------------------------------------------------------------------------------------
// SVD

static int svd_core(const float *A, int rows, int cols, float *U, float *S, float *V, int *fallback) {
    int k = rows < cols ? rows : cols;
    size_t mn = (size_t)rows * cols;
    float *a = t2_malloc(mn * sizeof *a), *vt = t2_malloc((size_t)k * cols * sizeof *vt);
    memcpy(a, A, mn * sizeof *a);
    if (fallback) *fallback = 0;
    lapack_int info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', rows, cols, a, cols, S, U, k, vt, cols);
    if (info > 0) {   // sgesdd did not converge: redo in double precision
        if (fallback) *fallback = 1;
        double *ad = t2_malloc(mn * sizeof *ad), *ud = t2_malloc((size_t)rows * k * sizeof *ud);
        double *sd = t2_malloc((size_t)k * sizeof *sd), *vd = t2_malloc((size_t)k * cols * sizeof *vd);
        for (size_t i = 0; i < mn; i++) ad[i] = A[i];
        info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', rows, cols, ad, cols, sd, ud, k, vd, cols);
        if (info == 0) {
            for (size_t i = 0; i < (size_t)rows * k; i++) U[i] = (float)ud[i];
            for (int i = 0; i < k; i++) S[i] = (float)sd[i];
            for (size_t i = 0; i < (size_t)k * cols; i++) vt[i] = (float)vd[i];
        }
        free(ad), free(ud), free(sd), free(vd);
    }
    free(a);
    if (info != 0) {
        free(vt);
        return t2_fail("SVD of a (%d, %d) matrix failed (LAPACKE ?gesdd info %d%s)", rows, cols, (int)info,
                       info > 0 ? ": no convergence in single or double precision" : ": bad argument or NaN/Inf in the matrix");
    }
    for (int c = 0; c < cols; c++)   // V(cols, k) = VTᵀ
        for (int j = 0; j < k; j++) V[(size_t)c * k + j] = vt[(size_t)j * cols + c];
    free(vt);
    return 0;
}

int t2_svf_svd(const float *A, int rows, int cols, float *U, float *S, float *V, int *fallback) {
    if (rows >= cols) return svd_core(A, rows, cols, U, S, V, fallback);
    // Wide: Aᵀ = U' S V'ᵀ is tall, and A = V' S U'ᵀ (gesdd is ~2x faster on the tall row-major form).
    float *at = t2_malloc((size_t)rows * cols * sizeof *at);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) at[(size_t)c * rows + r] = A[(size_t)r * cols + c];
    int rc = svd_core(at, cols, rows, V, S, U, fallback);
    free(at);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Decomposition

t2_svf_decompose_opts t2_svf_decompose_defaults(void) {
    t2_svf_decompose_opts o = {0};
    o.targets = T2_SVF_MLP;
    return o;
}

int t2_svf_default_path(char *out, size_t cap, const char *dir, int targets) {
    char name[64];
    snprintf(name, sizeof name, "svf-%s.safetensors", t2_svf_targets_name(targets));
    return t2_path_join(out, cap, dir, name);
}

// Is PART a finished part for entry E made from weights FP?
static int part_ok(const char *path, const plan_entry *e, const char *fp) {
    t2_st *st = t2_st_open(path);
    if (!st) return 0;
    int k = e->rows < e->cols ? e->rows : e->cols;
    int64_t su[2] = {e->rows, k}, ss[1] = {k}, sv[2] = {e->cols, k};
    const char *f = t2_st_metadata(st, "format"), *h = t2_st_metadata(st, "fingerprint"),
               *nm = t2_st_metadata(st, "name");
    const t2_st_tensor *u = t2_st_get_shape(st, "U", 2, su), *s = t2_st_get_shape(st, "S", 1, ss),
                       *v = t2_st_get_shape(st, "V", 2, sv);
    int ok = f && !strcmp(f, "t2-svf-part") && h && !strcmp(h, fp) && nm && !strcmp(nm, e->name) && u && s && v &&
             u->dtype == T2_DTYPE_F32 && s->dtype == T2_DTYPE_F32 && v->dtype == T2_DTYPE_F32;
    t2_st_close(st);
    t2_error_clear();
    return ok;
}

// Removes leftovers of a killed writer (NAME.tmp.PID) from DIR.
static void remove_tmp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strstr(de->d_name, ".tmp.")) continue;
        char p[4096];
        if (t2_path_join(p, sizeof p, dir, de->d_name) == 0) unlink(p);
    }
    closedir(d);
}

static int write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

// Streams every part into OUT (temp + fsync + rename): header first, then U, S, V per matrix.
static int merge(const char *out, const char *partdir, const plan_entry *p, int n, int targets,
                 const char *fp, const char *prefix) {
    cJSON *h = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(h, "__metadata__");
    char buf[64];
    cJSON_AddStringToObject(meta, "format", "t2-svf");
    cJSON_AddStringToObject(meta, "version", T2_SVF_VERSION);
    cJSON_AddStringToObject(meta, "targets", t2_svf_targets_name(targets));
    cJSON_AddStringToObject(meta, "fingerprint", fp);
    cJSON_AddStringToObject(meta, "prefix", prefix);
    snprintf(buf, sizeof buf, "%d", n);
    cJSON_AddStringToObject(meta, "count", buf);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        int k = p[i].rows < p[i].cols ? p[i].rows : p[i].cols;
        const int shapes[3][2] = {{p[i].rows, k}, {k, 0}, {p[i].cols, k}};
        const char *suf[3] = {"U", "S", "V"};
        for (int t = 0; t < 3; t++) {
            char nm[200];
            snprintf(nm, sizeof nm, "%s.%s", p[i].name, suf[t]);
            cJSON *e = cJSON_AddObjectToObject(h, nm);
            cJSON_AddStringToObject(e, "dtype", "F32");
            int nd = t == 1 ? 1 : 2;
            cJSON *sh = cJSON_AddArrayToObject(e, "shape");
            for (int d = 0; d < nd; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber(shapes[t][d]));
            uint64_t bytes = 4ull * (uint64_t)shapes[t][0] * (uint64_t)(nd == 2 ? shapes[t][1] : 1);
            cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
            cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
            cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + bytes)));
            off += bytes;
        }
    }
    char *json = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t jlen = strlen(json), hlen = (jlen + 7) & ~(size_t)7;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", out, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) { free(json); return t2_fail("%s: cannot create: %s", tmp, strerror(errno)); }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int ok = write_all(f, len8, 8) == 0 && write_all(f, json, jlen) == 0;
    for (size_t i = jlen; ok && i < hlen; i++) ok = fputc(' ', f) != EOF;
    free(json);
    for (int i = 0; ok && i < n; i++) {
        char pp[4200];
        snprintf(pp, sizeof pp, "%s/%05d.safetensors", partdir, i);
        t2_st *st = t2_st_open(pp);
        if (!st) { ok = 0; break; }
        const char *suf[3] = {"U", "S", "V"};
        for (int t = 0; t < 3 && ok; t++) {
            const t2_st_tensor *x = t2_st_get(st, suf[t]);
            ok = x && write_all(f, x->data, x->nbytes) == 0;
        }
        t2_st_close(st);
    }
    if (ok) ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        unlink(tmp);
        t2_error_prefix("%s: writing the merged decomposition failed: ", out);
        return -1;
    }
    if (rename(tmp, out) != 0) {
        int e = errno;
        unlink(tmp);
        return t2_fail("%s: cannot rename into place: %s", out, strerror(e));
    }
    for (int i = 0; i < n; i++) {
        char pp[4200];
        snprintf(pp, sizeof pp, "%s/%05d.safetensors", partdir, i);
        unlink(pp);
    }
    remove_tmp(partdir);
    rmdir(partdir);
    return 0;
}

int t2_svf_decompose(const t2_st *weights, const char *out, const t2_svf_decompose_opts *o, int *up_to_date) {
    t2_svf_decompose_opts d = o ? *o : t2_svf_decompose_defaults();
    if (up_to_date) *up_to_date = 0;
    if (d.targets < 1 || d.targets > 3) return t2_fail("decompose: bad targets %d", d.targets);
    const char *prefix;
    plan_entry *p;
    int n = make_plan(weights, d.targets, &p, &prefix);
    if (n < 0) return -1;
    t2_pool *pool = t2_pool_new(d.threads);
    char fp[17];
    fp_hex(fp, plan_fingerprint(p, n, pool));
    t2_pool_free(pool);

    if (!d.force && t2_file_exists(out)) {   // already done from these weights?
        t2_st *st = t2_st_open(out);
        const char *f = st ? t2_st_metadata(st, "format") : NULL, *v = st ? t2_st_metadata(st, "version") : NULL,
                   *h = st ? t2_st_metadata(st, "fingerprint") : NULL, *tg = st ? t2_st_metadata(st, "targets") : NULL;
        int same = f && !strcmp(f, "t2-svf") && v && !strcmp(v, T2_SVF_VERSION) && h && !strcmp(h, fp) && tg &&
                   !strcmp(tg, t2_svf_targets_name(d.targets));
        t2_st_close(st);
        t2_error_clear();
        if (same) {
            if (up_to_date) *up_to_date = 1;
            free(p);
            return 0;
        }
    }
    char partdir[4000];
    if (snprintf(partdir, sizeof partdir, "%s.partial", out) >= (int)sizeof partdir) { free(p); return t2_fail("%s: path too long", out); }
    if (t2_mkdirs(partdir)) { free(p); return -1; }
    remove_tmp(partdir);
    t2_blas_threads(d.threads);

    int done_now = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        const plan_entry *e = &p[i];
        int k = e->rows < e->cols ? e->rows : e->cols;
        char pp[4200];
        snprintf(pp, sizeof pp, "%s/%05d.safetensors", partdir, i);
        t2_svf_progress pr = {e->name, i, n, e->rows, e->cols, k, 0, 4 * ((size_t)e->rows * k + k + (size_t)e->cols * k), 0, 0};
        if (t2_file_exists(pp)) {
            if (part_ok(pp, e, fp)) {
                pr.resumed = 1;
                if (d.progress) d.progress(d.ctx, &pr);
                continue;
            }
            unlink(pp);   // from other weights or another plan: redo
        }
        if (d.stop_after > 0 && done_now >= d.stop_after) { rc = 1; break; }
        double t0 = t2_now();
        size_t mn = (size_t)e->rows * e->cols;
        float *a = t2_malloc(mn * sizeof *a), *u = t2_malloc((size_t)e->rows * k * sizeof *u);
        float *s = t2_malloc((size_t)k * sizeof *s), *v = t2_malloc((size_t)e->cols * k * sizeof *v);
        t2_to_f32(a, e->t->data, e->t->dtype, mn);
        int fb = 0;
        rc = t2_svf_svd(a, e->rows, e->cols, u, s, v, &fb);
        if (rc == 0) {
            t2_st_writer *w = t2_st_writer_new();
            int64_t su[2] = {e->rows, k}, ss[1] = {k}, sv[2] = {e->cols, k};
            t2_st_writer_add(w, "U", T2_DTYPE_F32, 2, su, u);
            t2_st_writer_add(w, "S", T2_DTYPE_F32, 1, ss, s);
            t2_st_writer_add(w, "V", T2_DTYPE_F32, 2, sv, v);
            t2_st_writer_meta(w, "format", "t2-svf-part");
            t2_st_writer_meta(w, "fingerprint", fp);
            t2_st_writer_meta(w, "name", e->name);
            rc = t2_st_writer_write(w, pp);
            t2_st_writer_free(w);
        } else {
            t2_error_prefix("%s: ", e->name);
        }
        free(a), free(u), free(s), free(v);
        if (rc) break;
        done_now++;
        pr.seconds = t2_now() - t0;
        pr.fallback = fb;
        if (d.progress) d.progress(d.ctx, &pr);
    }
    if (rc == 0) rc = merge(out, partdir, p, n, d.targets, fp, prefix);
    free(p);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Loading

struct t2_svf {
    t2_st *st;                  // the mapped decomposition
    int n, targets;
    uint64_t fp;
    size_t zsize;
    t2_svf_matrix *m;           // (n)
    char *names;                // (n, 160) the weights' names
};

t2_svf *t2_svf_load(const char *path, const t2_st *weights, t2_pool *pool) {
    t2_st *st = t2_st_open(path);
    if (!st) return NULL;
    const char *f = t2_st_metadata(st, "format"), *v = t2_st_metadata(st, "version"),
               *tg = t2_st_metadata(st, "targets"), *h = t2_st_metadata(st, "fingerprint"),
               *fprefix = t2_st_metadata(st, "prefix");
    plan_entry *p = NULL;
    t2_svf *s = NULL;
    int targets;
    if (!f || strcmp(f, "t2-svf")) { t2_fail("%s: not an SVF decomposition (metadata format '%s', expected 't2-svf')", path, f ? f : "(none)"); goto fail; }
    if (!v || strcmp(v, T2_SVF_VERSION)) { t2_fail("%s: SVF decomposition version '%s'; this t2 reads version " T2_SVF_VERSION " (rerun t2 svf decompose)", path, v ? v : "(none)"); goto fail; }
    if ((targets = t2_svf_targets_parse(tg)) < 0 || !h || !fprefix) { t2_fail("%s: metadata 'targets', 'fingerprint' or 'prefix' missing or invalid", path); goto fail; }
    int n = make_plan(weights, targets, &p, NULL);
    if (n < 0) { t2_error_prefix("%s: ", path); goto fail; }
    char fp[17];
    uint64_t fpv = plan_fingerprint(p, n, pool);
    fp_hex(fp, fpv);
    if (strcmp(fp, h)) {
        t2_fail("%s: stale SVD cache: it was made from other weights (fingerprint %s, the model's %s matrices hash "
                "to %s); rerun `t2 svf decompose --targets %s` on the model", path, h, tg, fp, tg);
        goto fail;
    }
    s = t2_calloc(1, sizeof *s);
    s->st = st, s->n = n, s->targets = targets, s->fp = fpv;
    s->m = t2_calloc((size_t)n, sizeof *s->m);
    s->names = t2_malloc((size_t)n * 160);
    for (int i = 0; i < n; i++) {
        t2_svf_matrix *m = &s->m[i];
        int k = p[i].rows < p[i].cols ? p[i].rows : p[i].cols;
        memcpy(s->names + (size_t)i * 160, p[i].name, 160);
        m->name = s->names + (size_t)i * 160;
        m->layer = p[i].layer, m->which = p[i].which, m->rows = p[i].rows, m->cols = p[i].cols, m->k = k;
        m->offset = s->zsize;
        m->W = p[i].t->data, m->dt = p[i].t->dtype;
        s->zsize += (size_t)k;
        const int64_t su[2] = {p[i].rows, k}, ss[1] = {k}, sv[2] = {p[i].cols, k};
        const float **dst[3] = {&m->U, &m->S, &m->V};
        const int64_t *shapes[3] = {su, ss, sv};
        const char *suf[3] = {"U", "S", "V"};
        for (int t = 0; t < 3; t++) {
            char nm[256];
            snprintf(nm, sizeof nm, "%slayers.%d.%s.%s", fprefix, p[i].layer, SUFFIX[p[i].which], suf[t]);
            const t2_st_tensor *x = t2_st_get_shape(st, nm, t == 1 ? 1 : 2, shapes[t]);
            if (!x) goto fail;
            if (x->dtype != T2_DTYPE_F32) { t2_fail("%s: tensor '%s' is %s, F32 expected", path, nm, t2_dtype_name(x->dtype)); goto fail; }
            *dst[t] = x->data;
        }
    }
    free(p);
    return s;
fail:
    free(p);
    if (s) { s->st = NULL; t2_svf_free(s); }
    t2_st_close(st);
    return NULL;
}

void t2_svf_free(t2_svf *s) {
    if (!s) return;
    t2_st_close(s->st);
    free(s->m);
    free(s->names);
    free(s);
}

int t2_svf_count(const t2_svf *s) { return s->n; }
const t2_svf_matrix *t2_svf_at(const t2_svf *s, int i) { T2_ASSERT(i >= 0 && i < s->n); return &s->m[i]; }
int t2_svf_targets_of(const t2_svf *s) { return s->targets; }
uint64_t t2_svf_fingerprint_of(const t2_svf *s) { return s->fp; }
size_t t2_svf_z_size(const t2_svf *s) { return s->zsize; }

int t2_svf_find(const t2_svf *s, int layer, int which) {
    for (int i = 0; i < s->n; i++)
        if (s->m[i].layer == layer && s->m[i].which == which) return i;
    return -1;
}
