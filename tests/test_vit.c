// test_vit.c — the vision towers against an independent reference (tests/ref/vit_ref.py: torch, f64,
// written from HF's modeling_clip.py / modeling_siglip.py) on tiny random LLaVA checkpoints written by
// tests/ref/make_llava.py: CLIP (LLaVA-1.5 legacy names, LLaVA-NeXT new names) and SigLIP
// (OneVision), F32 / F16 / BF16, 1 and 3 images (batches of 2, so chunking is exercised), a list
// vision_feature_layer, both select strategies, last_hidden_state / pooled output, 1 thread vs the
// pool. Also: HF config defaults, and clear errors for bad configs and missing / misshapen tensors.
#include "testutil.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "vision/vit.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_IMG 3

// N random normalised images (n, ch, S, S) written to PATH as raw f32; returned malloc'd.
static float *make_pixels(const char *path, int n, int ch, int S, uint64_t seed) {
    size_t k = (size_t)n * ch * S * S;
    float *px = t2_malloc(k * sizeof(float));
    t2_rng r;
    t2_rng_seed(&r, seed);
    for (size_t i = 0; i < k; i++) px[i] = t2_rng_normal(&r);
    T2_CHECK(t2_write_file_atomic(path, px, k * sizeof(float)) == 0, "write %s: %s", path, t2_last_error());
    return px;
}

typedef struct {
    const char *name, *kind, *dtype, *extra;
    int tokens, feat_dim, siglip;
} vit_case;

static void check_case(const t2_test_env *e, const vit_case *c, t2_pool *pool) {
    char dir[1024], px[1100], feat[1100], last[1100], pooled[1100], proj[1100];
    snprintf(dir, sizeof dir, "%s/%s", e->work, c->name);
    snprintf(px, sizeof px, "%s/pixels.f32", dir);
    snprintf(feat, sizeof feat, "%s/feat.f32", dir);
    snprintf(last, sizeof last, "%s/last.f32", dir);
    snprintf(pooled, sizeof pooled, "%s/pooled.f32", dir);
    snprintf(proj, sizeof proj, "%s/proj.f32", dir);
    printf("-- %s (%s, %s%s%s)\n", c->name, c->kind, c->dtype, c->extra[0] ? ", " : "", c->extra);
    int rc = t2_test_python(e, "make_llava.py", "'%s' --kind %s --dtype %s --seed 3 %s", dir, c->kind, c->dtype, c->extra);
    T2_CHECK(rc == 0, "make_llava.py failed for %s", c->name);
    if (rc) return;

    t2_vit_config cfg;
    if (t2_vit_config_load(dir, &cfg)) { T2_CHECK(0, "%s: config: %s", c->name, t2_last_error()); return; }
    int ch = cfg.n_channels, S = cfg.image_size, C = cfg.hidden_size, T = cfg.n_positions;
    float *pixels = make_pixels(px, N_IMG, ch, S, 100 + (uint64_t)c->tokens);
    char pooled_arg[1200] = "";
    if (!c->siglip) snprintf(pooled_arg, sizeof pooled_arg, "--pooled-out '%s'", pooled);
    rc = t2_test_python(e, "vit_ref.py", "'%s' --pixels '%s' --out '%s' --last-out '%s' --proj-out '%s' %s",
                        dir, px, feat, last, proj, pooled_arg);
    T2_CHECK(rc == 0, "vit_ref.py failed for %s", c->name);
    t2_st *st = t2_st_open(dir);
    T2_CHECK(st != NULL, "open %s: %s", dir, t2_last_error());
    t2_vit *vit = st ? t2_vit_new(st, &cfg, pool, 2) : NULL;
    T2_CHECK(vit != NULL, "%s: bind: %s", c->name, t2_last_error());
    if (rc || !vit) { t2_vit_free(vit); t2_st_close(st); free(pixels); return; }

    int nt = t2_vit_tokens(vit), F = t2_vit_feat_dim(vit);
    T2_CHECK(nt == c->tokens && F == c->feat_dim, "%s: tokens %d feat_dim %d, expected %d and %d",
             c->name, nt, F, c->tokens, c->feat_dim);
    T2_CHECK(cfg.kind == (c->siglip ? T2_VIT_SIGLIP : T2_VIT_CLIP), "%s: kind %s", c->name, t2_vit_kind_name(cfg.kind));
    size_t per = (size_t)nt * F;
    float *want = t2_test_read_f32(feat, N_IMG * per, NULL);
    float *got = t2_malloc(N_IMG * per * sizeof(float));
    char label[256];
    if (want) {
        T2_CHECK(t2_vit_features(vit, pixels, N_IMG, got) == 0, "features: %s", t2_last_error());
        snprintf(label, sizeof label, "  features, %d images (batches of 2)", N_IMG);
        t2_test_close(label, got, want, N_IMG * per, 1e-4);
        float *one = t2_malloc(per * sizeof(float));
        size_t img_px = (size_t)ch * S * S;
        T2_CHECK(t2_vit_features(vit, pixels + 2 * img_px, 1, one) == 0, "features: %s", t2_last_error());
        t2_test_close("  features, 1 image (the third)", one, want + 2 * per, per, 1e-4);
        free(one);
    }
    // The whole tower: last_hidden_state (and CLIP's pooled output) as HF's vision model returns them.
    float *wl = t2_test_read_f32(last, (size_t)N_IMG * T * C, NULL);
    float *gl = t2_malloc((size_t)N_IMG * T * C * sizeof(float));
    float *gp = t2_malloc((size_t)N_IMG * C * sizeof(float));
    if (wl) {
        T2_CHECK(t2_vit_forward(vit, pixels, N_IMG, gl, c->siglip ? NULL : gp) == 0, "forward: %s", t2_last_error());
        t2_test_close(c->siglip ? "  last_hidden_state (post_layernorm)" : "  last_hidden_state (raw last layer)",
                      gl, wl, (size_t)N_IMG * T * C, 1e-4);
        float *wp = c->siglip ? NULL : t2_test_read_f32(pooled, (size_t)N_IMG * C, NULL);
        if (wp) t2_test_close("  pooler_output (post_layernorm of the class token)", gp, wp, (size_t)N_IMG * C, 1e-4);
        free(wp);
    }
    // The projector reference ran too (for fusion's tests): its output has (n, tokens, text_hidden).
    size_t plen = 0;
    char *pbuf = t2_read_file(proj, &plen);
    T2_CHECK(pbuf && plen == (size_t)N_IMG * nt * 64 * sizeof(float), "%s: projector output of %zu bytes", c->name, plen);
    free(pbuf);
    free(gl); free(gp); free(wl); free(got); free(want); free(pixels);
    t2_vit_free(vit);
    t2_st_close(st);
}

// Parses TEXT as a config; 0/-1 as t2_vit_config_parse, and the error must contain EXPECT when failing.
static void config_error(const char *text, const char *expect) {
    cJSON *j = cJSON_Parse(text);
    T2_CHECK(j != NULL, "bad test JSON: %s", text);
    t2_vit_config cfg;
    int rc = t2_vit_config_parse(j, &cfg);
    T2_CHECK(rc == -1 && strstr(t2_last_error(), expect), "config %s: expected an error with '%s', got rc %d '%s'",
             text, expect, rc, t2_last_error());
    if (rc == -1) printf("ok   error: %s\n", t2_last_error());
    cJSON_Delete(j);
}

static int parse(const char *text, t2_vit_config *cfg) {
    cJSON *j = cJSON_Parse(text);
    int rc = t2_vit_config_parse(j, cfg);
    T2_CHECK(rc == 0, "config %s: %s", text, t2_last_error());
    cJSON_Delete(j);
    return rc;
}

static void check_configs(void) {
    t2_vit_config c;
    // No vision_config: LlavaConfig's CLIP-L/336 (LLaVA-1.5), layer -2 → hidden_states[23], drop CLS.
    if (!parse("{\"model_type\": \"llava\"}", &c))
        T2_CHECK(c.kind == T2_VIT_CLIP && c.hidden_size == 1024 && c.intermediate_size == 4096 && c.n_layers == 24 &&
                 c.n_heads == 16 && c.head_dim == 64 && c.image_size == 336 && c.patch_size == 14 &&
                 c.n_positions == 577 && c.act == T2_VIT_ACT_QUICK_GELU && fabsf(c.eps - 1e-5f) < 1e-12f &&
                 c.n_feature_layers == 1 && c.feature_index[0] == 23 && c.drop_first == 1,
                 "llava defaults: hidden %d layers %d positions %d index %d", c.hidden_size, c.n_layers,
                 c.n_positions, c.feature_index[0]);
    // LLaVA-OneVision with no vision_config: SigLIP with the same sizes, layer -1, "full".
    if (!parse("{\"model_type\": \"llava_onevision\"}", &c))
        T2_CHECK(c.kind == T2_VIT_SIGLIP && c.hidden_size == 1024 && c.n_positions == 576 &&
                 c.act == T2_VIT_ACT_GELU_TANH && fabsf(c.eps - 1e-6f) < 1e-12f && c.feature_index[0] == 24 &&
                 c.drop_first == 0, "onevision defaults: kind %d positions %d", c.kind, c.n_positions);
    // SiglipVisionConfig's own defaults (patch 16, image 224) when the keys are absent.
    if (!parse("{\"model_type\": \"llava_onevision\", \"vision_config\": {}}", &c))
        T2_CHECK(c.kind == T2_VIT_SIGLIP && c.hidden_size == 768 && c.n_layers == 12 && c.patch_size == 16 &&
                 c.image_size == 224 && c.n_positions == 196 && c.feature_index[0] == 12,
                 "siglip defaults: patch %d positions %d", c.patch_size, c.n_positions);
    // CLIPVisionConfig defaults (patch 32), and the llava-1.5-7b-hf vision_config as on the hub.
    if (!parse("{\"model_type\": \"llava_next\", \"vision_config\": {\"model_type\": \"clip_vision_model\"}}", &c))
        T2_CHECK(c.kind == T2_VIT_CLIP && c.patch_size == 32 && c.n_positions == 50 && c.feature_index[0] == 11 &&
                 c.drop_first == 1, "clip defaults: patch %d positions %d", c.patch_size, c.n_positions);
    if (!parse("{\"model_type\": \"llava\", \"vision_feature_layer\": -2, \"vision_feature_select_strategy\": \"default\","
               "\"vision_config\": {\"hidden_size\": 1024, \"image_size\": 336, \"intermediate_size\": 4096,"
               "\"model_type\": \"clip_vision_model\", \"num_attention_heads\": 16, \"num_hidden_layers\": 24,"
               "\"patch_size\": 14, \"projection_dim\": 768, \"vocab_size\": 32000}}", &c))
        T2_CHECK(c.n_positions == 577 && c.feature_index[0] == 23, "llava-1.5-7b-hf: %d %d", c.n_positions, c.feature_index[0]);
    // llava-onevision-qwen2-0.5b-ov-hf: SigLIP-so400m with 26 layers stored, 729 tokens.
    if (!parse("{\"model_type\": \"llava_onevision\", \"vision_feature_layer\": -1, \"vision_feature_select_strategy\": \"full\","
               "\"vision_config\": {\"hidden_size\": 1152, \"image_size\": 384, \"intermediate_size\": 4304,"
               "\"model_type\": \"siglip_vision_model\", \"num_attention_heads\": 16, \"num_hidden_layers\": 26,"
               "\"patch_size\": 14, \"vision_use_head\": false}}", &c))
        T2_CHECK(c.n_positions == 729 && c.feature_index[0] == 26 && c.head_dim == 72 && c.drop_first == 0,
                 "onevision-0.5b: %d %d", c.n_positions, c.feature_index[0]);
    // A list of layers, negative and positive; 0 = the embeddings.
    if (!parse("{\"model_type\": \"llava\", \"vision_feature_layer\": [-2, 0, 5, -25]}", &c))
        T2_CHECK(c.n_feature_layers == 4 && c.feature_index[0] == 23 && c.feature_index[1] == 0 &&
                 c.feature_index[2] == 5 && c.feature_index[3] == 0 && c.feature_layer[3] == -25,
                 "layer list: %d %d %d %d", c.feature_index[0], c.feature_index[1], c.feature_index[2], c.feature_index[3]);

    config_error("[1, 2]", "not a JSON object");
    config_error("{\"model_type\": \"llama\"}", "no 'vision_config'");
    config_error("{\"model_type\": \"llava\", \"vision_config\": 3}", "'vision_config' must be an object");
    config_error("{\"model_type\": \"llava\", \"vision_config\": {\"model_type\": \"dinov2\"}}", "vision_config.model_type 'dinov2'");
    config_error("{\"model_type\": \"llava\", \"vision_config\": {\"hidden_act\": \"swish\"}}", "hidden_act 'swish'");
    config_error("{\"model_type\": \"llava\", \"vision_config\": {\"hidden_size\": -4}}", "vision_config.hidden_size");
    config_error("{\"model_type\": \"llava\", \"vision_config\": {\"num_attention_heads\": 5}}", "not a multiple of num_attention_heads 5");
    config_error("{\"model_type\": \"llava\", \"vision_config\": {\"patch_size\": 14, \"image_size\": 10}}", "smaller than patch_size");
    config_error("{\"model_type\": \"llava\", \"vision_config\": {\"layer_norm_eps\": \"small\"}}", "vision_config.layer_norm_eps");
    config_error("{\"model_type\": \"llava\", \"vision_feature_layer\": 25}", "vision_feature_layer 25 is out of range");
    config_error("{\"model_type\": \"llava\", \"vision_feature_layer\": -26}", "vision_feature_layer -26 is out of range");
    config_error("{\"model_type\": \"llava\", \"vision_feature_layer\": \"-2\"}", "'vision_feature_layer' must be an integer");
    config_error("{\"model_type\": \"llava\", \"vision_feature_layer\": []}", "lists 0 layers");
    config_error("{\"model_type\": \"llava\", \"vision_feature_layer\": [-2, 1.5]}", "must be an integer or a list");
    config_error("{\"model_type\": \"llava\", \"vision_feature_select_strategy\": \"cls\"}", "vision_feature_select_strategy 'cls'");
}

// Copies every tensor of SRC into DIR/model.safetensors except DROP; RESHAPE (if not NULL) is written
// with its first dimension halved. Returns the opened copy.
static t2_st *copy_checkpoint(const char *src, const char *dir, const char *drop, const char *reshape) {
    t2_st *st = t2_st_open(src);
    if (!st) return NULL;
    t2_mkdirs(dir);
    t2_st_writer *w = t2_st_writer_new();
    for (int i = 0; i < t2_st_count(st); i++) {
        const t2_st_tensor *t = t2_st_at(st, i);
        if (drop && !strcmp(t->name, drop)) continue;
        int64_t shape[T2_ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        if (reshape && !strcmp(t->name, reshape)) shape[0] /= 2;
        t2_st_writer_add(w, t->name, t->dtype, t->ndim, shape, t->data);
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = t2_st_writer_write(w, path);
    t2_st_writer_free(w);
    t2_st_close(st);
    return rc ? NULL : t2_st_open(path);
}

static void check_bind_errors(const t2_test_env *e, t2_pool *pool) {
    char src[1024], dir[1100];
    snprintf(src, sizeof src, "%s/llava15-F32", e->work);
    t2_vit_config cfg;
    if (t2_vit_config_load(src, &cfg)) { T2_CHECK(0, "config: %s", t2_last_error()); return; }
    static const struct { const char *drop, *reshape, *expect; } cases[] = {
        {"vision_tower.vision_model.encoder.layers.1.mlp.fc2.bias", NULL,
         "tensor 'vision_tower.vision_model.encoder.layers.1.mlp.fc2.bias' not found"},
        {"vision_tower.vision_model.pre_layrnorm.weight", NULL, "vision_tower.vision_model.pre_layrnorm.weight"},
        {NULL, "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight",
         "tensor 'vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight' has shape [16, 32], expected [32, 32]"},
        {NULL, "vision_tower.vision_model.embeddings.patch_embedding.weight",
         "'vision_tower.vision_model.embeddings.patch_embedding.weight' has shape [16, 3, 14, 14], expected [32, 3, 14, 14]"},
        {"vision_tower.vision_model.embeddings.patch_embedding.weight", NULL, "no vision tower in the checkpoint"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(dir, sizeof dir, "%s/broken%zu", e->work, i);
        t2_st *st = copy_checkpoint(src, dir, cases[i].drop, cases[i].reshape);
        T2_CHECK(st != NULL, "copy: %s", t2_last_error());
        if (!st) continue;
        t2_vit *vit = t2_vit_new(st, &cfg, pool, 1);
        T2_CHECK(vit == NULL && strstr(t2_last_error(), cases[i].expect), "expected '%s', got '%s'",
                 cases[i].expect, vit ? "(loaded)" : t2_last_error());
        if (!vit) printf("ok   error: %s\n", t2_last_error());
        t2_vit_free(vit);
        t2_st_close(st);
    }
    // A config that disagrees with the checkpoint (image 70 → 26 positions) names the tensor.
    t2_st *st = t2_st_open(src);
    t2_vit_config big;
    if (st && !parse("{\"model_type\": \"llava\", \"vision_config\": {\"hidden_size\": 32, \"intermediate_size\": 64,"
                     "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"image_size\": 70, \"patch_size\": 14}}", &big)) {
        t2_vit *vit = t2_vit_new(st, &big, pool, 1);
        T2_CHECK(vit == NULL && strstr(t2_last_error(), "position_embedding.weight' has shape [17, 32], expected [26, 32]"),
                 "image_size mismatch: '%s'", vit ? "(loaded)" : t2_last_error());
        t2_vit_free(vit);
    }
    // Run-time errors: no images; SigLIP has no pooled output here.
    t2_vit *vit = st ? t2_vit_new(st, &cfg, pool, 1) : NULL;
    float dummy[4];
    T2_CHECK(vit && t2_vit_features(vit, dummy, 0, dummy) == -1 && strstr(t2_last_error(), "0 images"),
             "0 images: '%s'", t2_last_error());
    t2_vit_free(vit);
    t2_st_close(st);
}

// A checkpoint without post_layernorm: features work, the pooled output fails naming the tensor.
static void check_no_post_norm(const t2_test_env *e, t2_pool *pool) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/nopost", e->work);
    int rc = t2_test_python(e, "make_llava.py", "'%s' --kind llava15 --seed 3 --no-post-layernorm", dir);
    T2_CHECK(rc == 0, "make_llava.py --no-post-layernorm failed");
    t2_vit_config cfg;
    t2_st *st = rc ? NULL : t2_st_open(dir);
    if (!st || t2_vit_config_load(dir, &cfg)) { T2_CHECK(0, "nopost: %s", t2_last_error()); t2_st_close(st); return; }
    t2_vit *vit = t2_vit_new(st, &cfg, pool, 1);
    T2_CHECK(vit != NULL, "nopost bind: %s", t2_last_error());
    if (vit) {
        size_t npx = (size_t)3 * cfg.image_size * cfg.image_size;
        float *px = t2_calloc(npx, sizeof(float));
        float *out = t2_malloc((size_t)cfg.n_positions * cfg.hidden_size * sizeof(float));
        T2_CHECK(t2_vit_features(vit, px, 1, out) == 0, "nopost features: %s", t2_last_error());
        T2_CHECK(t2_vit_forward(vit, px, 1, out, NULL) == 0, "nopost last (CLIP needs no post norm): %s", t2_last_error());
        T2_CHECK(t2_vit_forward(vit, px, 1, NULL, out) == -1 && strstr(t2_last_error(), "post_layernorm.weight' is not in the checkpoint"),
                 "nopost pooled: '%s'", t2_last_error());
        free(px); free(out);
    }
    t2_vit_free(vit);
    t2_st_close(st);
}

// The same features with no pool (serial) as with the 2-thread pool.
static void check_threads(const t2_test_env *e, t2_pool *pool) {
    char dir[1024], px[1100];
    snprintf(dir, sizeof dir, "%s/onevision-F32", e->work);
    snprintf(px, sizeof px, "%s/pixels.f32", dir);
    t2_vit_config cfg;
    t2_st *st = t2_st_open(dir);
    if (!st || t2_vit_config_load(dir, &cfg)) { T2_CHECK(0, "threads: %s", t2_last_error()); t2_st_close(st); return; }
    float *pixels = t2_test_read_f32(px, (size_t)N_IMG * cfg.n_channels * cfg.image_size * cfg.image_size, NULL);
    t2_vit *a = t2_vit_new(st, &cfg, NULL, N_IMG), *b = t2_vit_new(st, &cfg, pool, 1);
    T2_CHECK(a && b && pixels, "threads: %s", t2_last_error());
    if (a && b && pixels) {
        size_t n = (size_t)N_IMG * t2_vit_tokens(a) * t2_vit_feat_dim(a);
        float *fa = t2_malloc(n * sizeof(float)), *fb = t2_malloc(n * sizeof(float));
        t2_vit_features(a, pixels, N_IMG, fa);
        t2_vit_features(b, pixels, N_IMG, fb);
        t2_test_close("serial, one batch of 3 vs 2 threads, batches of 1", fa, fb, n, 1e-5);
        float dummy[1];
        T2_CHECK(t2_vit_forward(a, pixels, 1, NULL, dummy) == -1 && strstr(t2_last_error(), "attention-pooling head"),
                 "siglip pooled: '%s'", t2_last_error());
        free(fa); free(fb);
    }
    free(pixels);
    t2_vit_free(a); t2_vit_free(b);
    t2_st_close(st);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    t2_pool *pool = t2_pool_new(2);
    static const vit_case cases[] = {
        // name              kind         dtype   extra                                   tokens feat siglip
        {"llava15-F32",      "llava15",   "F32",  "",                                     16, 32, 0},
        {"llava15-BF16",     "llava15",   "BF16", "",                                     16, 32, 0},
        {"llava15-list-full", "llava15",  "F32",  "--feature-layer=-2,-1 --strategy full", 17, 64, 0},
        {"llava15-list-0",   "llava15",   "F16",  "--feature-layer=0,-1,-2",              16, 96, 0},
        {"next-new",         "next",      "F32",  "--layout new --hidden-act gelu_pytorch_tanh", 16, 32, 0},
        {"onevision-F32",    "onevision", "F32",  "",                                     9, 32, 1},
        {"onevision-F16",    "onevision", "F16",  "",                                     9, 32, 1},
        {"onevision-gelu-default", "onevision", "F32", "--hidden-act gelu --strategy default --layout legacy", 8, 32, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&e, &cases[i], pool);
    check_configs();
    check_bind_errors(&e, pool);
    check_no_post_norm(&e, pool);
    check_threads(&e, pool);
    t2_pool_free(pool);
    return t2_test_done();
}
