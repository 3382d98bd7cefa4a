// registry.c — reading and checking models/<model>/experts/registry.json, lazy expert loading, and
// the classification prompt built from the dispatch entries (see registry.h; docs/adaptation.md).
#include "experts/registry.h"
#include "core/error.h"
#include "core/util.h"
#include <cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct t2_registry {
    char *path, *svf_path;
    t2_registry_entry *e;
    t2_expert **loaded;      // (n) lazily
    int n, classifier;
    t2_svf *svf;
};

int t2_registry_default_path(char *out, size_t cap, const char *model_dir) {
    char tmp[4096];
    if (t2_path_join(tmp, sizeof tmp, model_dir, "experts")) return -1;
    return t2_path_join(out, cap, tmp, "registry.json");
}

// PATH's folder into OUT.
static void dirname_of(const char *path, char *out, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, cap, ".");
    else snprintf(out, cap, "%.*s", (int)(slash - path == 0 ? 1 : slash - path), path);
}

// NAME resolved against DIR unless absolute; malloc'd.
static char *resolve(const char *dir, const char *name) {
    if (name[0] == '/') return t2_strdup(name);
    char buf[4096];
    if (t2_path_join(buf, sizeof buf, dir, name)) return NULL;
    return t2_strdup(buf);
}

static int label_ok(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' || *s == '-')) return 0;
    return 1;
}

static int one_line(const char *s) { return !strchr(s, '\n') && !strchr(s, '\r'); }

t2_registry *t2_registry_load(const char *model_dir, const char *path) {
    char def[4096];
    if (!path) {
        if (t2_registry_default_path(def, sizeof def, model_dir)) return NULL;
        path = def;
    }
    if (!t2_file_exists(path))
        return t2_fail_null("%s: no expert registry (this model has no experts; see docs/adaptation.md)", path);
    cJSON *j = t2_json_load(path);
    if (!j) return NULL;
    t2_registry *r = t2_calloc(1, sizeof *r);
    r->path = t2_strdup(path);
    r->classifier = -1;
    char dir[4096];
    dirname_of(path, dir, sizeof dir);
    int rc = 0;
    const char *fmt = t2_json_str(j, "format", NULL);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "experts");
    if (!fmt || strcmp(fmt, T2_REGISTRY_FORMAT))
        rc = t2_fail("%s: \"format\" is '%s', expected '" T2_REGISTRY_FORMAT "'", path, fmt ? fmt : "(missing)");
    else if (!cJSON_IsNumber(ver) || ver->valuedouble != T2_REGISTRY_VERSION)
        rc = t2_fail("%s: \"version\" must be %d (this t2 reads version %d)", path, T2_REGISTRY_VERSION, T2_REGISTRY_VERSION);
    else if (!cJSON_IsArray(arr))
        rc = t2_fail("%s: \"experts\" must be an array of entries", path);
    if (rc == 0) {
        const char *svf = t2_json_str(j, "svf", NULL);
        if (svf) r->svf_path = resolve(model_dir, svf);
        else {
            char p[4096];
            if (t2_svf_default_path(p, sizeof p, model_dir, T2_SVF_MLP) == 0) r->svf_path = t2_strdup(p);
        }
        if (!r->svf_path) rc = t2_fail("%s: the decomposition path is too long", path);
    }
    int n = rc == 0 ? cJSON_GetArraySize(arr) : 0;
    r->e = t2_calloc((size_t)(n ? n : 1), sizeof *r->e);
    r->loaded = t2_calloc((size_t)(n ? n : 1), sizeof *r->loaded);
    for (int i = 0; i < n && rc == 0; i++) {
        const cJSON *it = cJSON_GetArrayItem(arr, i);
        const char *name = t2_json_str(it, "name", NULL), *file = t2_json_str(it, "file", NULL);
        const cJSON *mj = cJSON_GetObjectItemCaseSensitive(it, "modality");
        const char *mod = cJSON_IsString(mj) ? mj->valuestring : mj && !cJSON_IsNull(mj) ? "(not a string)" : "text";
        if (!cJSON_IsObject(it) || !name || !*name || !file || !*file) {
            rc = t2_fail("%s: experts[%d] needs \"name\" and \"file\" strings", path, i);
            break;
        }
        if (strlen(name) >= 64 || !label_ok(name)) {
            rc = t2_fail("%s: experts[%d]: name '%s' must be 1-63 characters of [a-z0-9_-]", path, i, name);
            break;
        }
        for (int k = 0; k < r->n; k++)
            if (!strcmp(r->e[k].name, name)) { rc = t2_fail("%s: experts[%d]: duplicate name '%s' (also experts[%d])", path, i, name, k); break; }
        if (rc) break;
        t2_registry_entry *e = &r->e[r->n];
        e->name = t2_strdup(name);
        e->file = resolve(dir, file);
        r->n++;   // owned from here (freed with the registry)
        if (!strcmp(mod, "text")) e->modality = T2_MODALITY_TEXT;
        else if (!strcmp(mod, "vision")) e->modality = T2_MODALITY_VISION;
        else { rc = t2_fail("%s: expert '%s': modality '%s' is neither \"text\" nor \"vision\"", path, name, mod); break; }
        if (!e->file || !t2_file_exists(e->file)) {
            rc = t2_fail("%s: expert '%s': file %s does not exist", path, name, e->file ? e->file : file);
            break;
        }
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "dispatch");
        const char *label = d ? t2_json_str(d, "label", NULL) : NULL, *desc = d ? t2_json_str(d, "description", NULL) : NULL;
        if (d && (!cJSON_IsObject(d) || !label || !desc)) {
            rc = t2_fail("%s: expert '%s': \"dispatch\" needs \"label\" and \"description\" strings", path, name);
            break;
        }
        e->label = t2_strdup(label ? label : "");
        e->description = t2_strdup(desc ? desc : "");
        if (d) {
            if (!label_ok(label) || strlen(label) >= 64)
                rc = t2_fail("%s: expert '%s': dispatch label '%s' must be 1-63 characters of [a-z0-9_-]", path, name, label);
            else if (!strcmp(label, "other"))
                rc = t2_fail("%s: expert '%s': the label 'other' is reserved (it means the base weights)", path, name);
            else if (!*desc || !one_line(desc) || strchr(desc, ')'))
                rc = t2_fail("%s: expert '%s': the description must be one non-empty line without ')'", path, name);
            for (int k = 0; k < r->n - 1 && rc == 0; k++)
                if (!strcmp(r->e[k].label, label))
                    rc = t2_fail("%s: experts '%s' and '%s' have the same dispatch label '%s'", path, r->e[k].name, name, label);
        }
    }
    if (rc == 0) {
        const char *cls = t2_json_str(j, "classifier", NULL);
        if (cls && (r->classifier = t2_registry_find(r, cls)) < 0)
            rc = t2_fail("%s: \"classifier\" names '%s', which is not an entry", path, cls);
        else if (cls && r->e[r->classifier].label[0])
            rc = t2_fail("%s: the classifier '%s' must not have a dispatch entry", path, cls);
    }
    cJSON_Delete(j);
    if (rc) { t2_registry_free(r); return NULL; }
    return r;
}

void t2_registry_free(t2_registry *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) {
        free(r->e[i].name);
        free(r->e[i].file);
        free(r->e[i].label);
        free(r->e[i].description);
        t2_expert_free(r->loaded[i]);
    }
    free(r->e);
    free(r->loaded);
    t2_svf_free(r->svf);
    free(r->path);
    free(r->svf_path);
    free(r);
}

const char *t2_registry_path(const t2_registry *r) { return r->path; }
int t2_registry_count(const t2_registry *r) { return r->n; }
const t2_registry_entry *t2_registry_at(const t2_registry *r, int i) { T2_ASSERT(i >= 0 && i < r->n); return &r->e[i]; }
int t2_registry_classifier(const t2_registry *r) { return r->classifier; }
const char *t2_registry_svf_path(const t2_registry *r) { return r->svf_path; }

int t2_registry_find(const t2_registry *r, const char *name) {
    for (int i = 0; i < r->n; i++) if (!strcmp(r->e[i].name, name)) return i;
    return -1;
}

int t2_registry_find_label(const t2_registry *r, const char *label) {
    if (!label || !*label) return -1;
    for (int i = 0; i < r->n; i++) if (r->e[i].label[0] && !strcasecmp(r->e[i].label, label)) return i;
    return -1;
}

const t2_svf *t2_registry_svf(t2_registry *r, const t2_st *weights, t2_pool *pool) {
    if (r->svf) return r->svf;
    if (!t2_file_exists(r->svf_path))
        return t2_fail_null("%s: the experts' decomposition %s does not exist: run `t2 svf decompose` first", r->path, r->svf_path);
    r->svf = t2_svf_load(r->svf_path, weights, pool);
    if (!r->svf) t2_error_prefix("%s: ", r->path);
    return r->svf;
}

const t2_expert *t2_registry_expert(t2_registry *r, int i) {
    T2_ASSERT(i >= 0 && i < r->n);
    if (r->loaded[i]) return r->loaded[i];
    if (!r->svf) return t2_fail_null("%s: expert '%s': the decomposition is not loaded", r->path, r->e[i].name);
    r->loaded[i] = t2_expert_load(r->e[i].file, r->svf);
    if (!r->loaded[i]) t2_error_prefix("%s: expert '%s': ", r->path, r->e[i].name);
    return r->loaded[i];
}

char *t2_registry_prompt(const t2_registry *r, const char *question) {
    size_t cap = strlen(question) + 256;
    for (int i = 0; i < r->n; i++) cap += strlen(r->e[i].label) + strlen(r->e[i].description) + 8;
    char *p = t2_malloc(cap);
    size_t k = (size_t)snprintf(p, cap, "Classify the request into one category: ");
    for (int i = 0; i < r->n; i++)
        if (r->e[i].label[0]) k += (size_t)snprintf(p + k, cap - k, "%s (%s), ", r->e[i].label, r->e[i].description);
    snprintf(p + k, cap - k, "other (anything else). Answer \\boxed{category}.\nRequest: %s", question);
    return p;
}
