// www.c — the demo page's static files (server/www/: index.html, app.js, style.css). Built in when
// the build embeds them (T2_WWW_EMBED: CMake turns each file into a byte array with file(READ HEX),
// see server/embed_www.cmake), otherwise read from a directory: --www DIR, or server/www found next
// to the program (BUILD/t2 → BUILD/../server/www, for builds inside the source tree). The samples/
// images the page offers are found the same way. Not here: HTTP (http.c).
#include "server/www.h"
#include "core/error.h"
#include "core/util.h"
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef T2_WWW_EMBED
typedef struct { const char *name; const unsigned char *data; size_t size; } www_file;
extern const www_file t2_www_files[];
extern const int t2_www_n_files;
#endif

int t2_www_embedded(void) {
#ifdef T2_WWW_EMBED
    return 1;
#else
    return 0;
#endif
}

// Finds REL ("server/www") in the directory of the program or up to three levels above it.
char *t2_www_find_near_exe(const char *rel) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = 0;
    for (int up = 0; up <= 3; up++) {
        char cand[PATH_MAX + 64];
        size_t l = (size_t)snprintf(cand, sizeof cand, "%s", exe);
        for (int k = 0; k < up; k++) l += (size_t)snprintf(cand + l, sizeof cand - l, "/..");
        snprintf(cand + l, sizeof cand - l, "/%s", rel);
        if (t2_is_dir(cand)) return realpath(cand, NULL);
    }
    return NULL;
}

int t2_www_get(const char *dir, const char *name, const void **data, size_t *size, void **owned) {
    *owned = NULL;
    if (!*name || strchr(name, '/') || name[0] == '.') return t2_fail("no such page file '%s'", name);
    if (!dir) {
#ifdef T2_WWW_EMBED
        for (int i = 0; i < t2_www_n_files; i++)
            if (!strcmp(t2_www_files[i].name, name)) {
                *data = t2_www_files[i].data;
                *size = t2_www_files[i].size;
                return 0;
            }
#endif
        return t2_fail("no such page file '%s'", name);
    }
    char path[PATH_MAX];
    if (t2_path_join(path, sizeof path, dir, name) || !t2_file_exists(path)) return t2_fail("no such page file '%s'", name);
    size_t len;
    char *buf = t2_read_file(path, &len);
    if (!buf) return -1;
    *data = buf;
    *size = len;
    *owned = buf;
    return 0;
}

const char *t2_www_mime(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return "application/octet-stream";
    if (!strcmp(dot, ".html")) return "text/html; charset=utf-8";
    if (!strcmp(dot, ".js")) return "text/javascript; charset=utf-8";
    if (!strcmp(dot, ".css")) return "text/css; charset=utf-8";
    if (!strcmp(dot, ".png")) return "image/png";
    if (!strcmp(dot, ".jpg") || !strcmp(dot, ".jpeg")) return "image/jpeg";
    if (!strcmp(dot, ".svg")) return "image/svg+xml";
    if (!strcmp(dot, ".json")) return "application/json";
    return "application/octet-stream";
}

int t2_www_is_image_name(const char *name) {
    if (!*name || name[0] == '.' || strchr(name, '/') || strchr(name, '\\')) return 0;
    const char *dot = strrchr(name, '.');
    return dot && (!strcmp(dot, ".png") || !strcmp(dot, ".jpg") || !strcmp(dot, ".jpeg"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int t2_www_list_images(const char *dir, char ***names) {
    *names = NULL;
    if (!dir) return 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0, cap = 0;
    char **out = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!t2_www_is_image_name(de->d_name)) continue;
        if (n == cap) out = t2_realloc(out, sizeof(char *) * (size_t)(cap = cap ? cap * 2 : 16));
        out[n++] = t2_strdup(de->d_name);
    }
    closedir(d);
    if (n) qsort(out, (size_t)n, sizeof(char *), cmp_str);
    *names = out;
    return n;
}
