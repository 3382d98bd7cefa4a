// util.c — files, paths, JSON documents, clocks and memory helpers shared by every folder.
#include "core/util.h"
#include "core/error.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *t2_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return t2_fail_null("%s: cannot open: %s", path, strerror(errno));
    struct stat sb;   // a directory opens, and ftell then says LONG_MAX
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) { fclose(f); return t2_fail_null("%s: is a directory, not a file", path); }
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return t2_fail_null("%s: cannot seek", path); }
    long n = ftell(f);
    if (n < 0) { fclose(f); return t2_fail_null("%s: cannot tell size", path); }
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (!buf) { fclose(f); return t2_fail_null("%s: out of memory (%ld bytes)", path, n); }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf); fclose(f);
        return t2_fail_null("%s: read error", path);
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

int t2_write_file_atomic(const char *path, const void *data, size_t len) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return t2_fail("%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return t2_fail("%s: cannot create: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd); unlink(tmp);
            return t2_fail("%s: write failed: %s", path, strerror(e));
        }
        p += w; left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) { unlink(tmp); return t2_fail("%s: cannot flush", path); }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return t2_fail("%s: cannot rename into place: %s", path, strerror(e));
    }
    return 0;
}

int t2_copy_file_atomic(const char *from, const char *to) {
    size_t n;
    char *b = t2_read_file(from, &n);
    if (!b) return -1;
    int rc = t2_write_file_atomic(to, b, n);
    free(b);
    return rc;
}

cJSON *t2_json_load(const char *path) {
    size_t n;
    char *text = t2_read_file(path, &n);
    if (!text) return NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!j) {
        long off = end ? (long)(end - text) : -1;
        free(text);
        return t2_fail_null("%s: invalid JSON near byte %ld", path, off);
    }
    free(text);
    return j;
}

int t2_file_exists(const char *path) { struct stat s; return stat(path, &s) == 0 && S_ISREG(s.st_mode); }
int t2_is_dir(const char *path) { struct stat s; return stat(path, &s) == 0 && S_ISDIR(s.st_mode); }

int t2_path_join(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= cap) ? t2_fail("path too long: %s/%s", dir, name) : 0;
}

int t2_mkdirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return t2_fail("path too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return t2_fail("%s: cannot create: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return t2_fail("%s: cannot create: %s", buf, strerror(errno));
    return 0;
}

double t2_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t t2_peak_rss(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss * 1024;
}

static void oom(size_t n) {
    fprintf(stderr, "t2: out of memory allocating %zu bytes\n", n);
    abort();
}
void *t2_malloc(size_t n) { void *p = malloc(n ? n : 1); if (!p) oom(n); return p; }
void *t2_calloc(size_t n, size_t size) { void *p = calloc(n ? n : 1, size ? size : 1); if (!p) oom(n * size); return p; }
void *t2_realloc(void *p, size_t n) { void *q = realloc(p, n ? n : 1); if (!q) oom(n); return q; }
void *t2_aligned_alloc(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) oom(n);
    return p;
}
char *t2_strdup(const char *s) { size_t n = strlen(s) + 1; char *d = t2_malloc(n); memcpy(d, s, n); return d; }

int t2_json_num_in(const cJSON *obj, const char *where, const char *key, double def, double lo, double hi, int integer,
                   double *out) {
    const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    *out = def;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) {
        char *t = cJSON_PrintUnformatted(v);
        int rc = t2_fail("%s%s%s: expected a number, got %.60s", where, *where ? "." : "", key, t ? t : "?");
        free(t);
        return rc;
    }
    double d = v->valuedouble;
    if ((integer && d != floor(d)) || !(d >= lo && d <= hi)) {
        char *t = cJSON_PrintUnformatted(v);   // the number as cJSON reads it back: 1099511627776, 2.5
        int rc = integer && d != floor(d) ? t2_fail("%s%s%s: expected an integer, got %s", where, *where ? "." : "", key, t ? t : "?")
                                          : t2_fail("%s%s%s: %s is out of range [%.10g, %.10g]", where, *where ? "." : "", key,
                                                    t ? t : "?", lo, hi);
        free(t);
        return rc;
    }
    *out = d;
    return 0;
}

double t2_json_num(const cJSON *obj, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}
int t2_json_bool(const cJSON *obj, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}
const char *t2_json_str(const cJSON *obj, const char *key, const char *def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : def;
}

size_t t2_utf8_seq(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned char c = s[0];
    size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (need == 0 || need > n) return 0;
    for (size_t i = 1; i < need; i++) if ((s[i] & 0xC0) != 0x80) return 0;
    if (need == 2 && c < 0xC2) return 0;                              // overlong
    if (need == 3 && c == 0xE0 && s[1] < 0xA0) return 0;
    if (need == 3 && c == 0xED && s[1] >= 0xA0) return 0;            // surrogates
    if (need == 4 && ((c == 0xF0 && s[1] < 0x90) || c > 0xF4 || (c == 0xF4 && s[1] >= 0x90))) return 0;
    return need;
}

size_t t2_utf8_check(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, k;
    while (i < n && (k = t2_utf8_seq(s + i, n - i)) > 0) i += k;
    return i;
}

char *t2_utf8_sanitize(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    char *out = t2_malloc(3 * n + 1), *o = out;
    for (size_t i = 0; i < n;) {
        size_t k = t2_utf8_seq(s + i, n - i);
        if (k == 0) { memcpy(o, "\xEF\xBF\xBD", 3); o += 3; i++; continue; }
        memcpy(o, s + i, k);
        o += k;
        i += k;
    }
    *o = 0;
    return out;
}
