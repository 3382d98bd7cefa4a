// util.h — small shared helpers: files, paths, JSON documents, clocks, memory.
#ifndef T2_UTIL_H
#define T2_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <cJSON.h>

// Contract: whole file in a NUL-terminated malloc'd buffer (*len without the NUL); NULL + error.
char *t2_read_file(const char *path, size_t *len);
// Contract: write LEN bytes to PATH atomically (temp file in the same directory + fsync + rename).
int t2_write_file_atomic(const char *path, const void *data, size_t len);
// Contract: copy FROM to TO atomically (read whole, then t2_write_file_atomic); 0 or -1 + error.
int t2_copy_file_atomic(const char *from, const char *to);
// Contract: parse a JSON file; NULL + error naming the file and the position of a syntax error.
cJSON *t2_json_load(const char *path);
int t2_file_exists(const char *path);
int t2_is_dir(const char *path);
// Contract: "DIR/NAME" into OUT (cap bytes); -1 if it does not fit.
int t2_path_join(char *out, size_t cap, const char *dir, const char *name);
// Contract: mkdir -p.
int t2_mkdirs(const char *path);
// Contract: monotonic seconds.
double t2_now(void);
// Contract: peak resident set size of this process in bytes.
size_t t2_peak_rss(void);
// Contract: malloc/calloc that never return NULL (abort with a message on out-of-memory).
void *t2_malloc(size_t n);
void *t2_calloc(size_t n, size_t size);
// Contract: realloc that never returns NULL (aborts with a message on out-of-memory, like t2_malloc).
void *t2_realloc(void *p, size_t n);
// Contract: 64-byte aligned allocation (free with free()); aborts on OOM.
void *t2_aligned_alloc(size_t n);
char *t2_strdup(const char *s);

// Contract: length of the valid UTF-8 sequence at S (at most N bytes), 0 if S does not start one.
size_t t2_utf8_seq(const unsigned char *s, size_t n);
// Contract: the offset of S(n)'s first byte that is not valid UTF-8 (overlongs, surrogates, > U+10FFFF), or N.
size_t t2_utf8_check(const char *s, size_t n);
// Contract: a malloc'd copy of S(n) with every invalid UTF-8 byte replaced by U+FFFD.
char *t2_utf8_sanitize(const char *s, size_t n);

// JSON field helpers: value or DEF when absent / wrong type.
double t2_json_num(const cJSON *obj, const char *key, double def);
// Contract: OBJ's number KEY into *OUT (DEF when absent or null); fails naming WHERE.KEY when it is
// not a number, not an integer (INTEGER), or outside [LO, HI] — the value as written.
int t2_json_num_in(const cJSON *obj, const char *where, const char *key, double def, double lo, double hi, int integer,
                   double *out);
int t2_json_bool(const cJSON *obj, const char *key, int def);
const char *t2_json_str(const cJSON *obj, const char *key, const char *def);

#endif
