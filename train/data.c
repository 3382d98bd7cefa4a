// data.c — training samples from world families and JSONL files (data.h), rendered exactly as
// `t2 eval` asks (eval/run.c: t2_eval_prompt, the chat template, "<image>" spliced like
// fusion/vlm.c's t2_vlm_prompt_text), with the answer and the end-of-turn token as the only targets.
#include "train/data.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "core/util.h"
#include "eval/bench.h"
#include "eval/run.h"
#include "vision/image.h"
#include "world/world.h"

typedef struct {
    char name[64];
    double weight;
    int family;          // world family, or -1 for a JSONL file
    int option_letter;   // multiple choice answered "<option text> (<letter>)" instead of "<letter>"
    t2_eval_set set;     // JSONL items
} source;

struct t2_train_data {
    t2_train_data_model m;
    uint64_t seed;
    source *src;
    int n_src;
    double total_weight;
    long too_long;
    int32_t *scratch;    // (max_len + 64) token ids of one text segment
    uint8_t *rgb;        // (S, S, 3) a world image
};

static const char *base_name(const char *path, char *out, size_t cap) {
    const char *b = strrchr(path, '/');
    snprintf(out, cap, "%s", b ? b + 1 : path);
    char *dot = strrchr(out, '.');
    if (dot) *dot = 0;
    return out;
}

t2_train_data *t2_train_data_new(const cJSON *sources, const char *base_dir, const t2_train_data_model *m,
                                 uint64_t seed) {
    if (!cJSON_IsArray(sources) || cJSON_GetArraySize(sources) == 0)
        return t2_fail_null("data.sources: a non-empty array of {\"world\": FAMILY} / {\"jsonl\": FILE} expected");
    t2_train_data *d = t2_calloc(1, sizeof *d);
    d->m = *m, d->seed = seed;
    d->src = t2_calloc((size_t)cJSON_GetArraySize(sources), sizeof(source));
    d->scratch = t2_malloc(sizeof(int32_t) * (size_t)(m->max_len + 64));
    d->rgb = t2_malloc((size_t)(m->image_size > 0 ? m->image_size : 1) * (m->image_size > 0 ? m->image_size : 1) * 3);
    const cJSON *s;
    int i = 0;
    cJSON_ArrayForEach(s, sources) {
        source *x = &d->src[i];
        x->family = -1;
        char where[32];
        snprintf(where, sizeof where, "data.sources[%d]", i);
        if (t2_json_num_in(s, where, "weight", 1.0, 1e-9, 1e9, 0, &x->weight)) { t2_train_data_free(d); return NULL; }
        const char *w = t2_json_str(s, "world", NULL), *j = t2_json_str(s, "jsonl", NULL);
        if (w && j) { t2_train_data_free(d); return t2_fail_null("data.sources[%d]: \"world\" or \"jsonl\", not both", i); }
        const char *mc = t2_json_str(s, "mc_answer", "letter");
        if (strcmp(mc, "letter") && strcmp(mc, "option_letter")) {
            t2_train_data_free(d);
            return t2_fail_null("data.sources[%d]: mc_answer '%s' (letter or option_letter)", i, mc);
        }
        x->option_letter = !strcmp(mc, "option_letter");
        if (w) {
            if ((x->family = t2_world_family_parse(w)) < 0) {
                t2_train_data_free(d);
                return t2_fail_null("data.sources[%d]: unknown world family '%s'", i, w);
            }
            if (t2_world_family_has_images(x->family) && !m->pre) {
                t2_train_data_free(d);
                return t2_fail_null("data.sources[%d]: family '%s' has images but the model has no vision tower", i, w);
            }
            snprintf(x->name, sizeof x->name, "%s", w);
        } else if (j) {
            char path[2048], img[2048];
            snprintf(path, sizeof path, "%s%s%s", j[0] == '/' ? "" : base_dir, j[0] == '/' ? "" : "/", j);
            const char *im = t2_json_str(s, "images", NULL);
            if (im) snprintf(img, sizeof img, "%s%s%s", im[0] == '/' ? "" : base_dir, im[0] == '/' ? "" : "/", im);
            if (t2_eval_load(T2_BENCH_JSONL, path, NULL, im ? img : NULL, 0, &x->set)) {
                t2_train_data_free(d);
                return NULL;
            }
            if (x->set.n == 0) { t2_train_data_free(d); return t2_fail_null("data.sources[%d]: %s has no items", i, path); }
            base_name(j, x->name, sizeof x->name);
        } else {
            t2_train_data_free(d);
            return t2_fail_null("data.sources[%d]: needs \"world\" or \"jsonl\"", i);
        }
        d->total_weight += x->weight;
        d->n_src = ++i;
    }
    return d;
}

void t2_train_data_free(t2_train_data *d) {
    if (!d) return;
    for (int i = 0; i < d->n_src; i++) t2_eval_set_free(&d->src[i].set);
    free(d->src), free(d->scratch), free(d->rgb);
    free(d);
}

int t2_train_data_sources(const t2_train_data *d) { return d->n_src; }
const char *t2_train_data_source_name(const t2_train_data *d, int i) { return d->src[i].name; }
long t2_train_data_too_long(const t2_train_data *d) { return d->too_long; }

void t2_train_sample_alloc(t2_train_sample *s, int max_len, int image_size) {
    memset(s, 0, sizeof *s);
    s->ids = t2_malloc(sizeof(int32_t) * (size_t)max_len);
    s->targets = t2_malloc(sizeof(int32_t) * (size_t)max_len);
    s->is_image = t2_malloc((size_t)max_len);
    if (image_size > 0) s->pixels = t2_malloc(sizeof(float) * 3 * (size_t)image_size * image_size);
}

void t2_train_sample_free(t2_train_sample *s) {
    free(s->ids), free(s->targets), free(s->is_image), free(s->pixels);
    memset(s, 0, sizeof *s);
}

// splitmix64 of the inputs: the seed of one draw.
static uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Append the ids of TEXT to S (as not-scored positions); -1 when over max_len.
static int append_text(t2_train_data *d, t2_train_sample *s, const char *text, int add_special, int parse_special) {
    int cap = d->m.max_len + 64;
    int n = t2_tok_encode(d->m.tok, text, add_special, parse_special, d->scratch, cap);
    if (n < 0) return -2;
    if (n > cap || s->n + n > d->m.max_len) return -1;
    for (int k = 0; k < n; k++) s->ids[s->n] = d->scratch[k], s->is_image[s->n] = 0, s->targets[s->n++] = -1;
    return 0;
}

// The answer a multiple-choice item is trained on when its source says mc_answer "option_letter":
// the chosen option's text, then its letter in parentheses ("eagle (B)"). The letter is what
// eval/metrics.c's t2_mc_extract reads (rule 3 finds "(B)" before it ever looks for option text),
// so the score stays the letter's. GOLD is the item's letter; NULL when it names no option.
static const char *option_letter(const char *gold, char *const *choices, int n_choices, char *buf, size_t cap) {
    if (!gold || !gold[0] || gold[1] || gold[0] < 'A' || gold[0] >= 'A' + n_choices) return NULL;
    snprintf(buf, cap, "%s (%c)", choices[gold[0] - 'A'], gold[0]);
    return buf;
}

// Render ITEM (image already in s->pixels when it has one) into S. 0, -1 too long, -2 error.
static int render(t2_train_data *d, const t2_eval_item *item, int eval_suffix, t2_train_sample *s) {
    t2_eval_opts eo = {0};
    eo.prompt_suffix = eval_suffix ? NULL : "";
    char *text = t2_eval_prompt_text(item, &eo, item->image != NULL, d->m.chat, t2_tok_bos_text(d->m.tok));
    if (!text) return -2;
    s->n = 0;
    int rc = 0;
    const char *p = text, *mk = "<image>";
    for (int seg = 0; rc == 0; seg++) {   // text segments around the "<image>" marker (one at most)
        const char *e = strstr(p, mk);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *part = t2_malloc(len + 1);
        memcpy(part, p, len), part[len] = 0;
        rc = append_text(d, s, part, d->m.chat == T2_CHAT_NONE && seg == 0, 1);
        free(part);
        if (rc || !e) break;
        if (s->n + d->m.image_tokens > d->m.max_len) { rc = -1; break; }
        for (int k = 0; k < d->m.image_tokens; k++) s->ids[s->n] = d->m.image_token_id, s->is_image[s->n] = 1, s->targets[s->n++] = -1;
        p = e + strlen(mk);
    }
    free(text);
    if (rc) return rc;
    // The answer and the end of the turn, the only scored positions.
    int prompt_len = s->n;
    int n = t2_train_answer_ids(d->m.tok, d->m.chat, item->n_answers ? item->answers[0] : "", s->ids + s->n,
                                d->m.max_len - s->n);
    if (n < 0) return n;
    for (int k = 0; k < n; k++) s->is_image[s->n] = 0, s->targets[s->n++] = -1;
    for (int t = prompt_len - 1; t < s->n - 1; t++) s->targets[t] = s->ids[t + 1];
    return 0;
}

int t2_train_answer_ids(const t2_tokenizer *tok, t2_chat_kind chat, const char *answer, int32_t *out, int cap) {
    char ans[600];
    snprintf(ans, sizeof ans, "%s%s", chat == T2_CHAT_VICUNA || chat == T2_CHAT_NONE ? " " : "", answer);
    const char *stop = t2_chat_stop_text(chat);
    int end = stop ? t2_tok_id(tok, stop) : -1;
    if (end < 0) end = t2_tok_eos(tok);
    if (end < 0) return t2_fail("the tokenizer has no EOS token to end the answer with"), -2;
    int n = cap > 0 ? t2_tok_encode(tok, ans, 0, 0, out, cap) : 0;
    if (n < 0) return -2;
    if (n + 1 > cap) return -1;
    out[n] = end;
    return n + 1;
}

static int load_pixels(t2_train_data *d, const t2_image *im, float *out, const char *what) {
    t2_pixels px;
    if (t2_preprocess(d->m.pre, im, &px)) return t2_fail("%s: %s", what, t2_last_error());
    int S = d->m.image_size, rc = 0;
    if (px.n_tiles != 1 || px.h != S || px.w != S)
        rc = t2_fail("%s: the processor gives %d tile(s) of %dx%d; the tower takes one %dx%d", what, px.n_tiles, px.h, px.w, S, S);
    else memcpy(out, px.data, sizeof(float) * 3 * (size_t)S * S);
    t2_pixels_free(&px);
    return rc;
}

int t2_train_data_get(t2_train_data *d, int64_t step, int slot, float difficulty, t2_train_sample *s) {
    for (int attempt = 0; attempt < 16; attempt++) {
        t2_rng r;
        t2_rng_seed(&r, mix(mix(mix(d->seed) ^ (uint64_t)step) ^ ((uint64_t)slot << 8 | (uint64_t)attempt)));
        double u = t2_rng_uniform(&r) * d->total_weight;
        int si = 0;
        while (si < d->n_src - 1 && u >= d->src[si].weight) u -= d->src[si++].weight;
        source *x = &d->src[si];
        int eval_suffix = t2_rng_uniform(&r) < d->m.eval_prompt_share;
        snprintf(s->family, sizeof s->family, "%s", x->name);
        t2_eval_item item;
        memset(&item, 0, sizeof item);
        int rc;
        s->has_image = 0;
        if (x->family >= 0) {
            t2_world_item it;
            t2_world_opts wo = t2_world_defaults();
            if (d->m.image_size > 0) wo.image_size = d->m.image_size;
            wo.difficulty = difficulty;
            uint64_t index = t2_rng_u64(&r) >> 1;
            if (t2_world_make(x->family, T2_WORLD_SPLIT_TRAIN, index, &wo, &it, d->rgb)) return -1;
            char *answers[1] = {it.answer}, tgt[256], *ch[T2_WORLD_MAX_CHOICES];
            for (int k = 0; k < it.n_choices; k++) ch[k] = it.choices[k];
            const char *ol = x->option_letter ? option_letter(it.answer, ch, it.n_choices, tgt, sizeof tgt) : NULL;
            if (ol) answers[0] = tgt;
            item.id = it.id, item.question = it.question, item.answers = answers, item.n_answers = 1;
            const char *metric = t2_world_family_metric(x->family);
            item.metric = !strcmp(metric, "mc") ? T2_METRIC_MC : !strcmp(metric, "vqa") ? T2_METRIC_VQA : T2_METRIC_EXACT;
            item.image = it.has_image ? it.id : NULL;   // only its presence matters to the prompt
            if (it.has_image) {
                if (!d->m.pre) return t2_fail("%s: an image item for a text-only model", it.id);
                t2_image im = {wo.image_size, wo.image_size, d->rgb};
                if (load_pixels(d, &im, s->pixels, it.id)) return -1;
                s->has_image = 1;
            }
            rc = render(d, &item, eval_suffix, s);
        } else {
            const t2_eval_item *src = &x->set.items[t2_rng_below(&r, (uint64_t)x->set.n)];
            if (src->image) {
                if (!d->m.pre) return t2_fail("%s: item %s has an image but the model is text-only", x->name, src->id);
                t2_image im;
                if (t2_image_load(src->image, &im, T2_IMAGE_MAX_PIXELS)) return -1;
                rc = load_pixels(d, &im, s->pixels, src->image);
                t2_image_free(&im);
                if (rc) return -1;
                s->has_image = 1;
            }
            t2_eval_item copy = *src;
            char tgt[1024], *answers[1];
            const char *ol = x->option_letter && src->n_answers
                                 ? option_letter(src->answers[0], src->choices, src->n_choices, tgt, sizeof tgt) : NULL;
            if (ol) answers[0] = tgt, copy.answers = answers, copy.n_answers = 1;
            rc = render(d, &copy, eval_suffix, s);
        }
        if (rc == 0) return 0;
        if (rc == -2) return -1;
        d->too_long++;
    }
    return t2_fail("data: 16 draws in a row were longer than max_len %d (step %lld, slot %d): raise data.max_len",
                   d->m.max_len, (long long)step, slot);
}
