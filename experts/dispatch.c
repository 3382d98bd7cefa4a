// dispatch.c — the --adapt strategies, the \boxed{label} parser and the two-pass dispatcher (see
// dispatch.h; docs/adaptation.md). The first pass is a short greedy generation of the registry's
// classification prompt that stops as soon as a \boxed{...} is closed; its label picks a registry
// expert, and anything else — no box, an unknown label, 'other' — applies the base weights
// explicitly (the official code's bug gave 'other' whatever expert was loaded last).
#include "experts/dispatch.h"
#include "core/error.h"
#include "core/util.h"
#include "language/generate.h"
#include "language/sampler.h"
#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------
// The --adapt grammar

static int name_ok(const char *s, size_t n) {
    if (n == 0 || n >= T2_ADAPT_NAME) return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' || s[i] == '-')) return 0;
    return 1;
}

#define GRAMMAR "expected " T2_ADAPT_HELP

int t2_adapt_parse(const char *s, t2_adapt_spec *out) {
    memset(out, 0, sizeof *out);
    if (!s || !*s || !strcmp(s, "none")) { snprintf(out->text, sizeof out->text, "none"); return 0; }
    if (strlen(s) >= sizeof out->text) return t2_fail("--adapt: the value is too long (%zu characters)", strlen(s));
    snprintf(out->text, sizeof out->text, "%s", s);
    if (!strcmp(s, "prompt")) { out->kind = T2_ADAPT_PROMPT; return 0; }
    if (!strcmp(s, "classifier")) { out->kind = T2_ADAPT_CLASSIFIER; return 0; }
    if (!strncmp(s, "fewshot:", 8) || !strncmp(s, "expert:", 7)) {
        int few = s[0] == 'f';
        const char *a = s + (few ? 8 : 7);
        if (!*a) return t2_fail("--adapt '%s': %s needs a %s after the colon", s, few ? "fewshot" : "expert", few ? "FILE" : "NAME");
        out->kind = few ? T2_ADAPT_FEWSHOT : T2_ADAPT_EXPERT;
        snprintf(out->arg, sizeof out->arg, "%s", a);
        return 0;
    }
    if (!strncmp(s, "mix:", 4)) {
        out->kind = T2_ADAPT_MIX;
        const char *p = s + 4;
        while (*p) {
            const char *eq = strchr(p, '='), *comma = strchr(p, ',');
            if (!comma) comma = p + strlen(p);
            if (!eq || eq > comma) return t2_fail("--adapt '%s': each mixture term is NAME=α (at '%.*s')", s, (int)(comma - p), p);
            if (!name_ok(p, (size_t)(eq - p))) return t2_fail("--adapt '%s': '%.*s' is not an expert name", s, (int)(eq - p), p);
            if (out->n_mix == T2_ADAPT_MAX_MIX) return t2_fail("--adapt '%s': at most %d experts in a mixture", s, T2_ADAPT_MAX_MIX);
            char num[64], *end;
            snprintf(num, sizeof num, "%.*s", (int)(comma - eq - 1 < 63 ? comma - eq - 1 : 63), eq + 1);
            errno = 0;
            double v = strtod(num, &end);
            if (!*num || *end || errno || !isfinite(v)) return t2_fail("--adapt '%s': α '%s' is not a number", s, num);
            if (fabs(v) > FLT_MAX) return t2_fail("--adapt '%s': α '%s' is beyond a float's range", s, num);
            char *nm = out->mix_names[out->n_mix];
            snprintf(nm, T2_ADAPT_NAME, "%.*s", (int)(eq - p), p);
            for (int k = 0; k < out->n_mix; k++)
                if (!strcmp(out->mix_names[k], nm)) return t2_fail("--adapt '%s': '%s' appears twice", s, nm);
            out->mix_alpha[out->n_mix++] = (float)v;
            p = *comma ? comma + 1 : comma;
            if (*comma && !*p) return t2_fail("--adapt '%s': a trailing comma", s);
        }
        if (out->n_mix == 0) return t2_fail("--adapt '%s': the mixture is empty (mix:NAME=α,NAME=α)", s);
        return 0;
    }
    return t2_fail("--adapt '%s': unknown strategy; %s", s, GRAMMAR);
}

int t2_adapt_per_request(const t2_adapt_spec *s) { return s->kind == T2_ADAPT_PROMPT || s->kind == T2_ADAPT_CLASSIFIER; }

static const char *kind_name(t2_adapt_kind k) {
    static const char *n[] = {"none", "prompt", "classifier", "fewshot", "expert", "mix"};
    return n[k];
}

// ---------------------------------------------------------------------------------------------
// \boxed{label}

// The start of the last complete "\boxed{...}" (backslash optional, case-insensitive) in TEXT: *B at
// the label, *E at its closing brace; 0 if none.
static int last_box(const char *text, const char **b, const char **e) {
    int found = 0;
    for (const char *p = text; *p; p++) {
        if (strncasecmp(p, "boxed", 5)) continue;
        const char *q = p + 5;
        while (*q == ' ') q++;
        if (*q != '{') continue;
        const char *close = strchr(q + 1, '}');
        if (!close) break;
        *b = q + 1, *e = close, found = 1;
        p = close - 1 > p ? close - 1 : p;
    }
    return found;
}

int t2_dispatch_parse_label(const char *text, char *label, size_t cap) {
    T2_ASSERT(cap > 0);
    label[0] = 0;
    const char *b, *e;
    if (!text || !last_box(text, &b, &e)) return 0;
    while (b < e && isspace((unsigned char)*b)) b++;
    while (e > b && (isspace((unsigned char)e[-1]) || e[-1] == '.')) e--;
    size_t n = (size_t)(e - b) < cap - 1 ? (size_t)(e - b) : cap - 1;
    for (size_t i = 0; i < n; i++) label[i] = (char)tolower((unsigned char)b[i]);
    label[n] = 0;
    return 1;
}

// ---------------------------------------------------------------------------------------------
// The dispatcher

struct t2_dispatcher {
    t2_vlm *m;
    t2_adapt_spec spec;
    t2_dispatch_opts o;
    t2_registry *reg;
    const t2_svf *svf;
    t2_svf *own_svf;                      // the decomposition when there is no registry
    t2_svf_adapter *ad;
    t2_expert *fixed;                     // the fixed choice (owned) of expert:/mix:/fewshot:
    const t2_expert *fixed_ref;           // ... or a registry expert (borrowed)
    char fixed_name[T2_ADAPT_NAME];       // its report: a name, or a mixture
    int n_mix;
    char mix_names[T2_ADAPT_MAX_MIX][T2_ADAPT_NAME];
    float mix_alpha[T2_ADAPT_MAX_MIX];
    int needs_fewshot;
    t2_expert **kept;                     // mixtures built for choose_as (owned), by spec text
    char **kept_spec;
    int n_kept;
    t2_lm_state *st;                      // first pass
    float *logits;
    t2_sampler *smp;
};

t2_dispatch_opts t2_dispatch_defaults(void) {
    t2_dispatch_opts o = {0};
    o.chat = T2_CHAT_NONE;
    o.first_max_tokens = 24;
    o.cache_slots = 4;
    return o;
}

// A registry expert by name; NULL + error listing the names.
static const t2_expert *by_name(t2_dispatcher *d, const char *name) {
    int i = t2_registry_find(d->reg, name);
    if (i < 0) {
        char list[512] = "";
        size_t k = 0;
        for (int j = 0; j < t2_registry_count(d->reg) && k < sizeof list - 70; j++)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", j ? ", " : "", t2_registry_at(d->reg, j)->name);
        return t2_fail_null("%s: no expert named '%s' (the registry has: %s)", t2_registry_path(d->reg), name, list);
    }
    return t2_registry_expert(d->reg, i);
}

// Is PATH an expert file (safetensors with format t2-expert)?
static int is_expert_file(const char *path) {
    size_t n = strlen(path);
    return n > 12 && !strcmp(path + n - 12, ".safetensors");
}

// MIX's "mixture" names and α from an expert's settings JSON ({"mixture": {name: α}}), if any.
static void mixture_from_settings(t2_dispatcher *d, const t2_expert *e) {
    cJSON *j = cJSON_Parse(e->settings ? e->settings : "{}");
    const cJSON *mix = cJSON_GetObjectItemCaseSensitive(j, "mixture"), *it;
    cJSON_ArrayForEach(it, mix) {
        if (d->n_mix == T2_ADAPT_MAX_MIX || !cJSON_IsNumber(it)) break;
        snprintf(d->mix_names[d->n_mix], T2_ADAPT_NAME, "%s", it->string);
        d->mix_alpha[d->n_mix++] = (float)it->valuedouble;
    }
    cJSON_Delete(j);
}

t2_dispatcher *t2_dispatcher_new(t2_vlm *m, const t2_adapt_spec *spec, const t2_dispatch_opts *o) {
    t2_dispatcher *d = t2_calloc(1, sizeof *d);
    d->m = m;
    d->spec = *spec;
    d->o = o ? *o : t2_dispatch_defaults();
    if (d->o.first_max_tokens <= 0) d->o.first_max_tokens = 24;
    if (d->o.cache_slots <= 0) d->o.cache_slots = 4;
    if (spec->kind == T2_ADAPT_NONE) return d;
    const char *dir = t2_vlm_dir(m);
    // expert:PATH and fewshot:EXPERT-FILE need only the decomposition; the registry is optional then.
    int file_only = (spec->kind == T2_ADAPT_EXPERT || spec->kind == T2_ADAPT_FEWSHOT) && is_expert_file(spec->arg);
    d->reg = t2_registry_load(dir, d->o.registry);
    if (!d->reg && !file_only) goto fail;
    if (d->reg) d->svf = t2_registry_svf(d->reg, t2_vlm_weights(m), t2_vlm_pool(m));
    else {   // no registry: the default decomposition beside the model
        char p[4096];
        t2_error_clear();
        if (t2_svf_default_path(p, sizeof p, dir, T2_SVF_MLP) == 0)
            d->svf = d->own_svf = t2_svf_load(p, t2_vlm_weights(m), t2_vlm_pool(m));
        if (!d->svf) goto fail;
    }
    if (!d->svf) goto fail;
    if (!(d->ad = t2_svf_adapter_new(t2_vlm_lm(m), d->svf, d->o.cache_slots))) goto fail;
    if (t2_adapt_per_request(spec)) {   // the first pass's state, once
        const t2_lm_config *cfg = t2_vlm_lm_cfg(m);
        int n_ctx = d->o.n_ctx > 0 ? d->o.n_ctx : cfg->max_position < 4096 ? cfg->max_position : 4096;
        if (!(d->st = t2_lm_state_new(t2_vlm_lm(m), n_ctx, 512))) goto fail;
        d->logits = t2_malloc(sizeof(float) * (size_t)cfg->vocab_size);
        d->smp = t2_sampler_new(cfg->vocab_size, t2_sampler_defaults());   // greedy
    }
    switch (spec->kind) {
    case T2_ADAPT_PROMPT: break;
    case T2_ADAPT_CLASSIFIER: {
        int c = t2_registry_classifier(d->reg);
        if (c < 0) { t2_fail("%s: --adapt classifier needs a \"classifier\" expert in the registry (train one with `t2 svf train --task dispatch`)", t2_registry_path(d->reg)); goto fail; }
        if (!t2_registry_expert(d->reg, c)) goto fail;
        break;
    }
    case T2_ADAPT_EXPERT:
        if (d->reg && t2_registry_find(d->reg, spec->arg) >= 0) {
            if (!(d->fixed_ref = by_name(d, spec->arg))) goto fail;
            snprintf(d->fixed_name, sizeof d->fixed_name, "%.63s", spec->arg);
        } else if (is_expert_file(spec->arg)) {
            if (!(d->fixed = t2_expert_load(spec->arg, d->svf))) goto fail;
            const char *slash = strrchr(spec->arg, '/');
            snprintf(d->fixed_name, sizeof d->fixed_name, "%.*s", (int)strcspn(slash ? slash + 1 : spec->arg, "."), slash ? slash + 1 : spec->arg);
            mixture_from_settings(d, d->fixed);
        } else if (!by_name(d, spec->arg)) goto fail;
        break;
    case T2_ADAPT_MIX: {
        const t2_expert *ex[T2_ADAPT_MAX_MIX];
        for (int k = 0; k < spec->n_mix; k++) if (!(ex[k] = by_name(d, spec->mix_names[k]))) goto fail;
        if (!(d->fixed = t2_expert_mix(ex, spec->n_mix, spec->mix_alpha, 0))) goto fail;
        snprintf(d->fixed_name, sizeof d->fixed_name, "mixture");
        d->n_mix = spec->n_mix;
        memcpy(d->mix_names, spec->mix_names, sizeof d->mix_names);
        memcpy(d->mix_alpha, spec->mix_alpha, sizeof d->mix_alpha);
        break;
    }
    case T2_ADAPT_FEWSHOT:
        if (file_only) {
            if (!(d->fixed = t2_expert_load(spec->arg, d->svf))) goto fail;
            snprintf(d->fixed_name, sizeof d->fixed_name, "mixture");
            mixture_from_settings(d, d->fixed);
        } else {
            if (!t2_file_exists(spec->arg)) { t2_fail("--adapt %s: %s does not exist", spec->text, spec->arg); goto fail; }
            d->needs_fewshot = 1;
        }
        break;
    default: break;
    }
    return d;
fail:
    t2_dispatcher_free(d);
    return NULL;
}

void t2_dispatcher_free(t2_dispatcher *d) {
    if (!d) return;
    t2_svf_adapter_free(d->ad);   // restores the base weights
    t2_expert_free(d->fixed);
    for (int i = 0; i < d->n_kept; i++) { t2_expert_free(d->kept[i]); free(d->kept_spec[i]); }
    free(d->kept);
    free(d->kept_spec);
    t2_registry_free(d->reg);     // after the adapter: it owns the svf
    t2_svf_free(d->own_svf);
    t2_lm_state_free(d->st);
    free(d->logits);
    if (d->smp) t2_sampler_free(d->smp);
    free(d);
}

const t2_adapt_spec *t2_dispatcher_spec(const t2_dispatcher *d) { return &d->spec; }
t2_registry *t2_dispatcher_registry(t2_dispatcher *d) { return d->reg; }
t2_svf_adapter *t2_dispatcher_adapter(t2_dispatcher *d) { return d->ad; }
int t2_dispatcher_needs_fewshot(const t2_dispatcher *d) { return d->needs_fewshot; }

void t2_dispatcher_set_fixed(t2_dispatcher *d, t2_expert *e, const char *const *names, const float *alpha, int k) {
    t2_expert_free(d->fixed);
    d->fixed = e;
    d->fixed_ref = NULL;
    d->needs_fewshot = 0;
    d->n_mix = 0;
    snprintf(d->fixed_name, sizeof d->fixed_name, "%s", k > 0 ? "mixture" : e->task);
    for (int i = 0; i < k && i < T2_ADAPT_MAX_MIX; i++) {
        snprintf(d->mix_names[i], T2_ADAPT_NAME, "%s", names[i]);
        d->mix_alpha[i] = alpha[i];
        d->n_mix++;
    }
}

int t2_dispatcher_apply(t2_dispatcher *d, const t2_adapt_choice *c) {
    if (!d->ad) return 0;
    return t2_svf_apply(d->ad, c->weights);
}

static void choice_init(t2_dispatcher *d, t2_adapt_choice *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->strategy, sizeof c->strategy, "%s", kind_name(d->spec.kind));
    snprintf(c->choice, sizeof c->choice, "base");
}

void t2_dispatcher_choice_of_text(t2_dispatcher *d, const char *text, t2_adapt_choice *c) {
    choice_init(d, c);
    snprintf(c->first_text, sizeof c->first_text, "%s", text);
    t2_dispatch_parse_label(text, c->label, sizeof c->label);
    int i = d->reg ? t2_registry_find_label(d->reg, c->label) : -1;
    if (i >= 0 && (c->weights = t2_registry_expert(d->reg, i))) {   // a known label → its expert
        snprintf(c->choice, sizeof c->choice, "%s", t2_registry_at(d->reg, i)->name);
        snprintf(c->expert, sizeof c->expert, "%s", t2_registry_at(d->reg, i)->name);
    }   // unknown / 'other' / no box (or an expert that does not load) → base
}

// on_text of the first pass: keep the text, stop once a \boxed{...} is closed.
typedef struct { char buf[512]; size_t n; } first_out;
static int first_on_text(void *ctx, const char *text, size_t len) {
    first_out *f = ctx;
    size_t k = len < sizeof f->buf - 1 - f->n ? len : sizeof f->buf - 1 - f->n;
    memcpy(f->buf + f->n, text, k);
    f->n += k;
    f->buf[f->n] = 0;
    const char *b, *e;
    return last_box(f->buf, &b, &e);
}

// The first pass: the classification prompt, greedy, capped; its output into OUT. 1 (no error) when
// the classification prompt does not fit the context: why, into NOTE(cap).
static int first_pass(t2_dispatcher *d, const char *question, const t2_image_rows *images, int n, first_out *out, int *positions,
                      char *note, size_t cap) {
    t2_lm *lm = t2_vlm_lm(d->m);
    const t2_lm_config *cfg = t2_vlm_lm_cfg(d->m);
    const t2_tokenizer *tok = t2_vlm_tok(d->m);
    if (!tok) return t2_fail("%s has no tokenizer: the first pass needs one", t2_vlm_dir(d->m));
    int n_ctx = d->o.n_ctx > 0 ? d->o.n_ctx : cfg->max_position < 4096 ? cfg->max_position : 4096;
    char *q = t2_registry_prompt(d->reg, question);
    char *content = t2_malloc(strlen(q) + 8 * (size_t)n + 1), *text = NULL;
    content[0] = 0;
    for (int k = 0; k < n; k++) strcat(content, "<image>\n");
    strcat(content, q);
    free(q);
    if (d->o.chat != T2_CHAT_NONE) {
        t2_chat_msg msg = {"user", content};
        if (!(text = t2_chat_render(d->o.chat, &msg, 1, t2_tok_bos_text(tok)))) { free(content); return -1; }
    }
    t2_prompt p;
    int rc = t2_vlm_prompt_text(d->m, text ? text : content, d->o.chat == T2_CHAT_NONE, images, n, &p);
    free(text);
    free(content);
    if (rc) return -1;
    if (p.n + 1 >= n_ctx) {   // the request alone may still fit: it is answered with the base weights
        snprintf(note, cap, "the first pass's prompt has %d positions, more than its %d-token context: base weights", p.n, n_ctx);
        *positions = p.n;
        t2_prompt_free(&p);
        return 1;
    }
    t2_lm_state_rewind(d->st, 0);
    rc = t2_lm_forward(lm, d->st, p.ids, p.embeds, p.is_embed, p.n, d->logits, 0);
    if (rc == 0) {
        t2_gen_params gp = {0};
        gp.n_predict = d->o.first_max_tokens < n_ctx - p.n ? d->o.first_max_tokens : n_ctx - p.n;
        if (d->o.chat != T2_CHAT_NONE && t2_chat_stop_text(d->o.chat)) gp.stops[gp.n_stops++] = t2_chat_stop_text(d->o.chat);
        gp.on_text = first_on_text;
        gp.ctx = out;
        t2_gen_result res;
        rc = t2_generate(lm, d->st, tok, d->smp, d->logits, p.ids, p.n, &gp, &res);
        *positions = p.n + res.n_gen;
        t2_gen_result_free(&res);
    }
    t2_prompt_free(&p);
    return rc;
}

int t2_dispatcher_choose(t2_dispatcher *d, const char *question, const t2_image_rows *images, int n, t2_adapt_choice *c) {
    choice_init(d, c);
    if (d->spec.kind == T2_ADAPT_NONE) return 0;
    if (d->needs_fewshot) return t2_fail("--adapt %s: the few-shot mixture has not been searched yet", d->spec.text);
    t2_svf_adapter_stats s0 = t2_svf_adapter_stats_get(d->ad);
    if (t2_adapt_per_request(&d->spec)) {
        // Pass 1 under the base weights (prompt) or the classification expert (classifier).
        const t2_expert *first = d->spec.kind == T2_ADAPT_CLASSIFIER ? t2_registry_expert(d->reg, t2_registry_classifier(d->reg)) : NULL;
        if (d->spec.kind == T2_ADAPT_CLASSIFIER && !first) return -1;
        double t0 = t2_now();
        if (t2_svf_apply(d->ad, first)) return -1;
        first_out out = {{0}, 0};
        int pos = 0;
        char note[sizeof c->note] = "";
        if (first_pass(d, question, images, n, &out, &pos, note, sizeof note) < 0) return -1;
        double fp = t2_now() - t0;
        t2_dispatcher_choice_of_text(d, out.buf, c);
        memcpy(c->note, note, sizeof note);
        snprintf(c->strategy, sizeof c->strategy, "%s", kind_name(d->spec.kind));
        c->first_pass_s = fp;
        c->first_tokens = pos;
        s0 = t2_svf_adapter_stats_get(d->ad);
    } else {
        snprintf(c->choice, sizeof c->choice, "%s", d->fixed_name);
        if (d->n_mix == 0) snprintf(c->expert, sizeof c->expert, "%s", d->fixed_name);
        c->weights = d->fixed ? d->fixed : d->fixed_ref;
        c->n_mix = d->n_mix;
        memcpy(c->mix_names, d->mix_names, sizeof c->mix_names);
        memcpy(c->mix_alpha, d->mix_alpha, sizeof c->mix_alpha);
    }
    double t1 = t2_now();
    if (t2_dispatcher_apply(d, c)) return -1;
    c->apply_s = t2_now() - t1;
    t2_svf_adapter_stats s1 = t2_svf_adapter_stats_get(d->ad);
    c->cache_hit = s1.misses == s0.misses;
    return 0;
}

void t2_adapt_choice_json(struct cJSON *obj, const t2_adapt_choice *c) {
    cJSON_AddStringToObject(obj, "adapt", c->strategy);
    if (!strcmp(c->strategy, "prompt") || !strcmp(c->strategy, "classifier")) {
        cJSON_AddStringToObject(obj, "label", c->label);
        char *clean = t2_utf8_sanitize(c->first_text, strlen(c->first_text));
        cJSON_AddStringToObject(obj, "first_pass_output", clean);
        if (c->note[0]) cJSON_AddStringToObject(obj, "first_pass_note", c->note);
        free(clean);
    }
    cJSON_AddStringToObject(obj, "choice", c->choice);
    if (c->expert[0]) cJSON_AddStringToObject(obj, "expert", c->expert);
    else cJSON_AddNullToObject(obj, "expert");
    if (c->n_mix > 0) {
        cJSON *mix = cJSON_AddObjectToObject(obj, "mixture");
        for (int k = 0; k < c->n_mix; k++) cJSON_AddNumberToObject(mix, c->mix_names[k], c->mix_alpha[k]);
    }
    cJSON_AddNumberToObject(obj, "first_pass_ms", round(c->first_pass_s * 1e5) / 100);
    cJSON_AddNumberToObject(obj, "apply_ms", round(c->apply_s * 1e5) / 100);
    cJSON_AddBoolToObject(obj, "cache_hit", c->cache_hit);
}

// ---------------------------------------------------------------------------------------------
// Another strategy per request (the server)

#define MAX_KEPT_MIX 64

int t2_dispatcher_choose_as(t2_dispatcher *d, const t2_adapt_spec *spec, const char *question, const t2_image_rows *images,
                            int n, t2_adapt_choice *c) {
    if (!strcmp(spec->text, d->spec.text)) return t2_dispatcher_choose(d, question, images, n, c);
    if (spec->kind != T2_ADAPT_NONE && !d->reg) return t2_fail("adaptation strategy '%s' is not available: this model has no experts", spec->text);
    if (spec->kind == T2_ADAPT_FEWSHOT) return t2_fail("adaptation strategy '%s': few-shot runs offline (t2 adapt fewshot); use expert:NAME", spec->text);
    if (spec->kind == T2_ADAPT_CLASSIFIER && t2_registry_classifier(d->reg) < 0)
        return t2_fail("adaptation strategy 'classifier' is not available: the registry has no classification expert");
    t2_adapt_spec saved = d->spec;
    t2_expert *fixed = d->fixed;
    const t2_expert *fixed_ref = d->fixed_ref;
    char fixed_name[T2_ADAPT_NAME];
    int n_mix = d->n_mix;
    memcpy(fixed_name, d->fixed_name, sizeof fixed_name);
    d->spec = *spec;
    d->fixed = NULL, d->fixed_ref = NULL, d->n_mix = 0;
    int rc = 0;
    if (spec->kind == T2_ADAPT_EXPERT) {
        if (!(d->fixed_ref = by_name(d, spec->arg))) rc = -1;
        snprintf(d->fixed_name, sizeof d->fixed_name, "%.63s", spec->arg);
    } else if (spec->kind == T2_ADAPT_MIX) {
        int k = 0;
        while (k < d->n_kept && strcmp(d->kept_spec[k], spec->text)) k++;
        if (k == d->n_kept) {   // a new mixture: built once, kept (its weights are cached by the adapter)
            const t2_expert *ex[T2_ADAPT_MAX_MIX];
            for (int i = 0; i < spec->n_mix && rc == 0; i++) if (!(ex[i] = by_name(d, spec->mix_names[i]))) rc = -1;
            if (rc == 0 && d->n_kept == MAX_KEPT_MIX) rc = t2_fail("too many distinct mixtures (%d) in this process", MAX_KEPT_MIX);
            t2_expert *mx = rc == 0 ? t2_expert_mix(ex, spec->n_mix, spec->mix_alpha, 0) : NULL;
            if (rc == 0 && !mx) rc = -1;
            if (rc == 0) {
                d->kept = t2_realloc(d->kept, sizeof(t2_expert *) * (size_t)(d->n_kept + 1));
                d->kept_spec = t2_realloc(d->kept_spec, sizeof(char *) * (size_t)(d->n_kept + 1));
                d->kept[d->n_kept] = mx;
                d->kept_spec[d->n_kept++] = t2_strdup(spec->text);
            }
        }
        if (rc == 0) {
            d->fixed_ref = d->kept[k];
            snprintf(d->fixed_name, sizeof d->fixed_name, "mixture");
            d->n_mix = spec->n_mix;
            memcpy(d->mix_names, spec->mix_names, sizeof d->mix_names);
            memcpy(d->mix_alpha, spec->mix_alpha, sizeof d->mix_alpha);
        }
    }
    if (rc == 0 && t2_adapt_per_request(spec) && !d->st) {
        const t2_lm_config *cfg = t2_vlm_lm_cfg(d->m);
        int n_ctx = d->o.n_ctx > 0 ? d->o.n_ctx : cfg->max_position < 4096 ? cfg->max_position : 4096;
        if (!(d->st = t2_lm_state_new(t2_vlm_lm(d->m), n_ctx, 512))) rc = -1;
        else {
            d->logits = t2_malloc(sizeof(float) * (size_t)cfg->vocab_size);
            d->smp = t2_sampler_new(cfg->vocab_size, t2_sampler_defaults());
        }
    }
    if (rc == 0) {
        if (spec->kind == T2_ADAPT_NONE) {
            choice_init(d, c);
            rc = t2_svf_apply(d->ad, NULL);
        } else {
            rc = t2_dispatcher_choose(d, question, images, n, c);
        }
    }
    d->spec = saved;
    d->fixed = fixed, d->fixed_ref = fixed_ref, d->n_mix = n_mix;
    memcpy(d->fixed_name, fixed_name, sizeof fixed_name);
    return rc;
}
