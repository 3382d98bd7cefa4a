// test_train.c — `t2 train` end to end on a tiny LLaVA (vlm_fixtures.py chatmodel: CLIP + Llama with
// a real tokenizer and the Vicuna template) and world data: the loss falls; a run stopped with
// --max-steps and resumed, and a run killed with SIGKILL mid-way and resumed, end with checkpoints
// byte-identical to an uninterrupted run's (parameters, AdamW state, step, RNG) and the same log;
// the exported model loads in `t2 ask`; bad recipes and unsafe restarts are refused with clear errors.
#include "testutil.h"
#include <math.h>
#include "core/error.h"
#include "core/util.h"
#include "language/tokenizer.h"
#include "train/data.h"
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char model[1100];

// WORK/NAME.json holding TEXT (its path in PATH); a failure is recorded.
static void write_recipe(const t2_test_env *e, const char *name, const char *text, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s.json", e->work, name);
    T2_CHECK(t2_write_file_atomic(path, text, strlen(text)) == 0, "cannot write %s", path);
}

static void recipe(const t2_test_env *e, const char *name, long steps, const char *extra) {
    char path[1200], text[4096];
    snprintf(text, sizeof text,
             "{\"out\": \"%s/%s\", \"seed\": 5,\n"
             " \"model\": {\"init\": \"%s\", \"export_dtype\": \"F32\"},\n"
             " \"data\": {\"max_len\": 80, \"sources\": [{\"world\": \"scene\", \"weight\": 2}, {\"world\": \"math\", \"weight\": 1}],\n"
             "          \"difficulty\": {\"start\": 0, \"end\": 1, \"ramp_steps\": 100}},\n"
             " \"optim\": {%s\"steps\": %ld, \"batch\": 4, \"accum\": 2, \"lr\": 3e-3, \"lr_min\": 3e-4, \"warmup\": 10, \"clip\": 1.0},\n"
             " \"checkpoint\": {\"every\": 25}, \"log_every\": 1000}\n",
             e->work, name, model, extra, steps);
    write_recipe(e, name, text, path, sizeof path);
}

// A scene-only run NAME (seed 5, batch 4, F32 export) with the optim fields OPTIM and top-level
// fields EXTRA (each "" or starting with ", "), trained to the end; a failure is recorded.
static void run_scene(const t2_test_env *e, const char *name, const char *optim, const char *extra) {
    char path[1200], text[4096], *out = NULL;
    snprintf(text, sizeof text,
             "{\"out\": \"%s/%s\", \"seed\": 5, \"model\": {\"init\": \"%s\", \"export_dtype\": \"F32\"},\n"
             " \"data\": {\"max_len\": 80, \"sources\": [{\"world\": \"scene\"}]},\n"
             " \"optim\": {\"batch\": 4, \"lr\": 3e-3%s},\n"
             " \"checkpoint\": {\"every\": 100}%s}\n",
             e->work, name, model, optim, extra);
    write_recipe(e, name, text, path, sizeof path);
    int rc = t2_test_sh(&out, "'%s' train -q --config '%s' 2>&1", e->t2, path);
    T2_CHECK(rc == 0, "run %s failed:\n%s", name, out);
    T2_CHECK(!strstr(out, "overall"), "run %s: train -q printed validation's score tables:\n%s", name, out);
    free(out);
}

static char *file(const t2_test_env *e, const char *rel, size_t *n) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", e->work, rel);
    return t2_read_file(p, n);
}

static int same_file(const t2_test_env *e, const char *a, const char *b) {
    size_t na, nb;
    char *x = file(e, a, &na), *y = file(e, b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x), free(y);
    return same;
}

// The log without its timing columns (tokens/s, samples/s, elapsed differ run to run).
static char *log_losses(const t2_test_env *e, const char *run) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/log.csv", run);
    size_t n;
    char *b = file(e, rel, &n);
    if (!b) return NULL;
    char *out = t2_malloc(n + 1), *o = out, *line = b;
    b[n] = 0;
    while (*line) {
        char *nl = strchr(line, '\n');
        if (!nl) break;
        int commas = 0;
        for (char *p = line; p < nl; p++) {
            if (*p == ',' && ++commas == 4) break;
            *o++ = *p;
        }
        *o++ = '\n';
        line = nl + 1;
    }
    *o = 0;
    free(b);
    return out;
}

// The data's "mc_answer": a multiple-choice item's target is its letter (" C") by default, and with
// "option_letter" the chosen option's text then its letter (" green (C)") — checked against the
// option lines of the prompt itself, for world reasoning items and a JSONL item with choices; a
// misspelt value is refused. Uses the shipped tokenizer (text only, no tower).
static void mc_answer(const t2_test_env *e) {
    char dir[1100], path[1200];
    snprintf(dir, sizeof dir, "%s/models/t2-tiny", e->src);
    t2_tokenizer *tok = t2_tok_load(dir);
    T2_CHECK(tok != NULL, "tokenizer: %s", t2_last_error());
    if (!tok) return;
    snprintf(path, sizeof path, "%s/mc.jsonl", e->work);
    FILE *f = fopen(path, "w");
    fputs("{\"id\": \"m0\", \"question\": \"Which is a colour?\", \"choices\": [\"saw\", \"crow\", \"green\"], \"answers\": [\"green\"]}\n", f);
    fclose(f);
    t2_train_data_model m = {.tok = tok, .chat = T2_CHAT_VICUNA, .max_len = 192, .eval_prompt_share = 0.5};
    for (int variant = 0; variant < 3; variant++) {
        const char *how = variant == 0 ? "" : variant == 1 ? ", \"mc_answer\": \"option_letter\"" : ", \"mc_answer\": \"text\"";
        char js[1400];
        snprintf(js, sizeof js, "[{\"world\": \"reasoning\"%s}, {\"jsonl\": \"%s\"%s}]", how, path, how);
        cJSON *src = cJSON_Parse(js);
        t2_train_data *d = t2_train_data_new(src, e->work, &m, 7);
        cJSON_Delete(src);
        if (variant == 2) {
            T2_CHECK(d == NULL && strstr(t2_last_error(), "mc_answer 'text'"), "a bad mc_answer accepted (%s)", t2_last_error());
            t2_train_data_free(d);
            continue;
        }
        T2_CHECK(d != NULL, "data: %s", t2_last_error());
        if (!d) continue;
        t2_train_sample s;
        t2_train_sample_alloc(&s, m.max_len, 0);
        int seen[2] = {0}, good = 0, n = 0;
        for (int step = 0; step < 40; step++) {
            if (t2_train_data_get(d, step, 0, 1.0f, &s)) { T2_CHECK(0, "get: %s", t2_last_error()); break; }
            int32_t ans[64];
            int k = 0, first = -1;
            for (int t = 0; t < s.n - 1; t++)
                if (s.targets[t] >= 0 && k < 64) ans[k++] = s.targets[t], first = first < 0 ? t + 1 : first;
            char prompt[4096], a[256];
            t2_tok_decode(tok, s.ids, first, 1, prompt, sizeof prompt);
            t2_tok_decode(tok, ans, k, 1, a, sizeof a);
            seen[!strcmp(s.family, "mc")]++;
            char word[96] = "", line[128], L = 0;
            int ok;
            if (variant == 0) ok = sscanf(a, " %c", &L) == 1 && strlen(a) == 2 && a[0] == ' ';
            else ok = sscanf(a, " %95[a-z] (%c)", word, &L) == 2 && a[0] == ' ' && a[strlen(a) - 1] == ')';
            if (ok && variant == 1) {
                snprintf(line, sizeof line, "\n%c. %s\n", L, word);
                char whole[4200];
                snprintf(whole, sizeof whole, "%s\n", prompt);
                ok = strstr(whole, line) != NULL || (snprintf(line, sizeof line, "\n%c. %s ", L, word), strstr(whole, line) != NULL);
            }
            if (ok && !strcmp(s.family, "mc")) ok = L == 'C' && (variant == 0 || !strcmp(word, "green"));
            good += ok, n++;
            if (!ok && n - good <= 2) fprintf(stderr, "variant %d, %s: prompt [%s] answer [%s]\n", variant, s.family, prompt, a);
        }
        T2_CHECK(good == n && seen[0] > 5 && seen[1] > 5, "mc_answer variant %d: %d of %d answers as expected (%d world, %d jsonl)",
                 variant, good, n, seen[0], seen[1]);
        t2_train_sample_free(&s);
        t2_train_data_free(d);
    }
    t2_tok_free(tok);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    char *out = NULL;
    mc_answer(&e);
    snprintf(model, sizeof model, "%s/model", e.work);
    int rc = t2_test_python(&e, "vlm_fixtures.py", "chatmodel '%s' '%s'", model, e.work);
    T2_CHECK(rc == 0, "vlm_fixtures.py chatmodel failed");
    if (rc) return t2_test_done();

    // 1. uninterrupted: 300 steps
    recipe(&e, "full", 300, "");
    rc = t2_test_sh(&out, "'%s' train --config '%s/full.json' 2>&1", e.t2, e.work);
    T2_CHECK(rc == 0, "t2 train failed:\n%s", out);
    free(out);
    {
        size_t n;
        char *b = file(&e, "full/log.csv", &n);
        T2_CHECK(b != NULL, "no log.csv");
        double first = 0, last = 0;
        int k = 0, rows = 0;
        long s;
        double l;
        for (char *p = b ? strchr(b, '\n') : NULL; p && sscanf(p + 1, "%ld,%lf", &s, &l) == 2; p = strchr(p + 1, '\n'), k++) {
            if (k < 10) first += l / 10;
            if (s > 270) last += l / 30;
            rows++;
        }
        printf("loss: first 10 steps %.3f, last 30 steps %.3f (%d rows)\n", first, last, rows);
        T2_CHECK(rows == 300, "log.csv has %d rows, 300 expected", rows);
        T2_CHECK(last < 0.7 * first, "the loss did not fall: %.3f → %.3f", first, last);
        free(b);
    }

    // 2. stopped after 110 steps (a checkpoint at 100 and one at the stop), then resumed
    recipe(&e, "stop", 300, "");
    rc = t2_test_sh(&out, "'%s' train -q --config '%s/stop.json' --max-steps 110 2>&1 && "
                          "'%s' train -q --config '%s/stop.json' --resume 2>&1", e.t2, e.work, e.t2, e.work);
    T2_CHECK(rc == 0, "stop + resume failed:\n%s", out);
    free(out);
    T2_CHECK(same_file(&e, "full/checkpoint.safetensors", "stop/checkpoint.safetensors"),
             "stopped + resumed run: final checkpoint differs from the uninterrupted run's");
    char *a = log_losses(&e, "full"), *b = log_losses(&e, "stop");
    T2_CHECK(a && b && !strcmp(a, b), "stopped + resumed run: the log's losses differ");
    free(b);

    // 3. SIGKILL after step 60 (last checkpoint 50: steps 51.. are redone), then resumed
    recipe(&e, "kill", 300, "");
    rc = t2_test_sh(&out,
                    "'%s' train -q --config '%s/kill.json' & pid=$!; "
                    "for i in $(seq 1 3000); do grep -q '^6[0-9],' '%s/kill/log.csv' 2>/dev/null && break; sleep 0.01; done; "
                    "kill -9 $pid; wait $pid; echo \"status $?\"; "
                    "tail -n 1 '%s/kill/log.csv' | cut -d, -f1; "
                    "'%s' train -q --config '%s/kill.json' --resume 2>&1",
                    e.t2, e.work, e.work, e.work, e.t2, e.work);
    printf("kill test:\n%s", out ? out : "");
    T2_CHECK(rc == 0, "kill + resume failed:\n%s", out);
    T2_CHECK(out && strstr(out, "status 137"), "the run was not killed by SIGKILL (it finished first?):\n%s", out);
    free(out);
    T2_CHECK(same_file(&e, "full/checkpoint.safetensors", "kill/checkpoint.safetensors"),
             "killed + resumed run: final checkpoint differs from the uninterrupted run's");
    b = log_losses(&e, "kill");
    T2_CHECK(a && b && !strcmp(a, b), "killed + resumed run: the log's losses differ");
    free(a), free(b);

    // 3b. family_loss.csv: with one micro-batch per step and log_every 1, the token-weighted mean of a
    //     step's family losses is that step's loss (log.csv), and both sources appear
    {
        char path[1200], text[4096];
        snprintf(text, sizeof text,
                 "{\"out\": \"%s/fam\", \"seed\": 9, \"model\": {\"init\": \"%s\", \"export_dtype\": \"F32\"},\n"
                 " \"data\": {\"max_len\": 80, \"sources\": [{\"world\": \"scene\"}, {\"world\": \"math\"}]},\n"
                 " \"optim\": {\"steps\": 6, \"batch\": 6, \"lr\": 1e-3, \"warmup\": 1},\n"
                 " \"checkpoint\": {\"every\": 100}, \"log_every\": 1}\n", e.work, model);
        write_recipe(&e, "fam", text, path, sizeof path);
        rc = t2_test_sh(&out, "'%s' train -q --config '%s' 2>&1", e.t2, path);
        T2_CHECK(rc == 0, "family run failed:\n%s", out);
        free(out);
        size_t n1, n2;
        char *lg = file(&e, "fam/log.csv", &n1), *fl = file(&e, "fam/family_loss.csv", &n2);
        T2_CHECK(lg && fl && strstr(fl, "step,family,loss,tokens\n") == fl, "family_loss.csv missing or without its header");
        int checked = 0, seen_scene = 0, seen_math = 0;
        for (char *p = lg ? strchr(lg, '\n') : NULL; p && p[1]; p = strchr(p + 1, '\n')) {
            long s, fs, tk;
            double l, fl_, sum = 0, tok = 0;
            char fam[64];
            if (sscanf(p + 1, "%ld,%lf", &s, &l) != 2) break;
            for (char *q = fl ? strchr(fl, '\n') : NULL; q && q[1]; q = strchr(q + 1, '\n'))
                if (sscanf(q + 1, "%ld,%63[^,],%lf,%ld", &fs, fam, &fl_, &tk) == 4 && fs == s) {
                    sum += fl_ * (double)tk, tok += (double)tk;
                    seen_scene |= !strcmp(fam, "scene"), seen_math |= !strcmp(fam, "math");
                }
            T2_CHECK(tok > 0 && fabs(sum / tok - l) < 1e-4 * (1 + l), "step %ld: families' mean %g, log.csv %g", s, tok ? sum / tok : 0, l);
            checked++;
        }
        T2_CHECK(checked == 6 && seen_scene && seen_math, "family_loss.csv: %d steps checked, scene %d, math %d", checked, seen_scene, seen_math);
        free(lg), free(fl);
    }

    // 3c. data parallelism: 2 replicas (each on its chunks of the length-sorted batch, gradients
    //     summed) against one replica over the whole batch, and against "data_parallel": false with 2
    //     BLAS threads: the same loss at every step up to float noise (1e-4 relative). A replica left
    //     with stale parameters, or chunks weighted by rows instead of targets, is off by far more.
    {
        const char *names[3] = {"dp1", "dp2", "dpoff"};
        const char *top[3] = {"\"threads\": 1", "\"threads\": 2", "\"threads\": 2, \"data_parallel\": false"};
        char *logs[3] = {0};
        for (int i = 0; i < 3; i++) {
            char path[1200], text[4096];
            snprintf(text, sizeof text,
                     "{\"out\": \"%s/%s\", \"seed\": 11, %s, \"model\": {\"init\": \"%s\", \"export_dtype\": \"F32\"},\n"
                     " \"data\": {\"max_len\": 80, \"sources\": [{\"world\": \"scene\"}, {\"world\": \"math\"}]},\n"
                     " \"optim\": {\"steps\": 12, \"batch\": 7, \"accum\": 2, \"lr\": 3e-3, \"warmup\": 1},\n"
                     " \"checkpoint\": {\"every\": 100}, \"log_every\": 1000}\n", e.work, names[i], top[i], model);
            write_recipe(&e, names[i], text, path, sizeof path);
            rc = t2_test_sh(&out, "'%s' train --config '%s' 2>&1", e.t2, path);
            T2_CHECK(rc == 0, "%s run failed:\n%s", names[i], out);
            T2_CHECK(i != 1 || (out && strstr(out, "data-parallel over 2 threads")), "dp2: no data-parallel line:\n%s", out);
            T2_CHECK(i == 1 || (out && !strstr(out, "data-parallel")), "%s: data-parallel though it should not be:\n%s", names[i], out);
            logs[i] = log_losses(&e, names[i]);
            // the progress line (one, at the end: log_every 1000) shows the mean loss of its window, all 12 steps
            double shown = NAN, mean = 0;
            const char *pl = out ? strstr(out, "step 12/12") : NULL;
            if (pl) sscanf(pl, "step 12/12 loss %lf", &shown);
            int k = 0;
            for (char *q = logs[i] ? strchr(logs[i], '\n') : NULL; q && q[1]; q = strchr(q + 1, '\n'), k++) {
                long st;
                double l;
                if (sscanf(q + 1, "%ld,%lf", &st, &l) == 2) mean += l / 12;
            }
            T2_CHECK(k == 12 && fabs(shown - mean) <= 6e-5, "%s: progress line's loss %g, mean of the 12 logged %g", names[i], shown, mean);
            free(out);
        }
        for (int i = 1; i < 3; i++) {
            int steps = 0;
            double worst = 0;
            char *p = logs[0] ? strchr(logs[0], '\n') : NULL, *q = logs[i] ? strchr(logs[i], '\n') : NULL;
            for (; p && q && p[1] && q[1]; p = strchr(p + 1, '\n'), q = strchr(q + 1, '\n')) {
                long s1, s2;
                double l1, l2;
                if (sscanf(p + 1, "%ld,%lf", &s1, &l1) != 2 || sscanf(q + 1, "%ld,%lf", &s2, &l2) != 2 || s1 != s2) break;
                worst = fmax(worst, fabs(l1 - l2) / l1);
                steps++;
            }
            printf("%s vs one replica: %d steps, worst loss relative difference %.3g\n", names[i], steps, worst);
            T2_CHECK(steps == 12 && worst <= 1e-4, "%s vs dp1: %d steps compared, loss differs by %.3g relative", names[i], steps, worst);
        }
        for (int i = 0; i < 3; i++) free(logs[i]);
    }

    // 4. optim.lr_scale: the tower frozen for the first 10 of 20 steps, then trained; frozen throughout;
    //    and the whole vision side (tower + projector) frozen throughout
    {
        static const char *scales[3] = {"\"vision_tower\": 0", "\"vision_tower\": {\"scale\": 0, \"until\": 10}",
                                        "\"vision_tower\": 0, \"multi_modal_projector\": 0"};
        for (int k = 0; k < 3; k++) {
            char name[16], optim[256];
            snprintf(name, sizeof name, "freeze%d", k);
            snprintf(optim, sizeof optim, ", \"steps\": %d, \"lr_scale\": {%s}", k == 1 ? 20 : 10, scales[k]);
            run_scene(&e, name, optim, k == 2 ? ", \"valid\": {\"every\": 10, \"n\": 4, \"difficulty\": 0, \"families\": [\"math\", \"scene\"]}" : "");
        }
        // tower tensors: unchanged after 10 frozen steps, changed after 10 more; the projector trained
        // unless frozen too
        rc = t2_test_sh(&out, "%s -c \"import sys; sys.path.insert(0, '%s/tests/ref'); import st, numpy as np; "
                              "a = st.Checkpoint('%s'); b = st.Checkpoint('%s/freeze0/model'); c = st.Checkpoint('%s/freeze1/model'); "
                              "f = st.Checkpoint('%s/freeze2/model'); "
                              "t = 'vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight'; p = 'multi_modal_projector.linear_1.weight'; "
                              "d = lambda x, y, n: float(np.abs(np.asarray(x.get(n), np.float32) - np.asarray(y.get(n), np.float32)).max()); "
                              "print(d(a, b, t), d(a, c, t), d(a, b, p), d(a, f, t), d(a, f, p))\"",
                        e.python, e.src, model, e.work, e.work, e.work);
        double f0 = -1, f1 = -1, p0 = -1, f2 = -1, p2 = -1;
        T2_CHECK(rc == 0 && out && sscanf(out, "%lf %lf %lf %lf %lf", &f0, &f1, &p0, &f2, &p2) == 5, "comparing the exports failed: %s", out);
        printf("lr_scale: tower moved %.3g while frozen, %.3g after unfreezing; projector moved %.3g; all frozen: %.3g %.3g\n",
               f0, f1, p0, f2, p2);
        T2_CHECK(f0 == 0 && f1 > 0 && p0 > 0, "lr_scale: frozen tower moved %g / unfrozen %g / projector %g", f0, f1, p0);
        T2_CHECK(f2 == 0 && p2 == 0, "lr_scale: the frozen vision side moved (tower %g, projector %g)", f2, p2);
        free(out);
        // frozen tensors are left out of the clipping norm (as torch leaves out requires_grad=False):
        // step 1 has the same loss in both runs (same init, same batch) but a smaller |g| when the
        // projector is frozen too
        double l0 = 0, g0 = 0, l2 = 0, g2 = 0;
        for (int k = 0; k < 3; k += 2) {
            rc = t2_test_sh(&out, "sed -n 2p '%s/freeze%d/log.csv'", e.work, k);
            T2_CHECK(rc == 0 && out && sscanf(out, "%*d,%lf,%*f,%lf", k ? &l2 : &l0, k ? &g2 : &g0) == 2,
                     "freeze%d/log.csv: %s", k, out);
            free(out);
        }
        printf("lr_scale: step 1 loss %.6f / %.6f, |g| %.6f (tower frozen) / %.6f (vision frozen)\n", l0, l2, g0, g2);
        T2_CHECK(l0 == l2 && g2 < g0 * 0.999, "lr_scale: frozen gradients counted in the clipping norm (%g vs %g)", g2, g0);
        // valid.difficulty 0: the validation items are the world's at difficulty 0 (t2 world gen's bytes;
        // the test model's images are 56 px), not difficulty 1's
        rc = t2_test_sh(&out, "'%s' world gen -q --family scene --split valid --n 4 --difficulty 0 --image-size 56 --out '%s/d0' && "
                              "cmp '%s/d0/scene-valid.jsonl' '%s/freeze2/valid-data-d0/scene-valid.jsonl' && "
                              "cmp '%s/d0/images/scene-valid-3.png' '%s/freeze2/valid-data-d0/images/scene-valid-3.png' && "
                              "'%s' world gen -q --family scene --split valid --n 4 --image-size 56 --out '%s/d1' && "
                              "! cmp -s '%s/d1/images/scene-valid-3.png' '%s/freeze2/valid-data-d0/images/scene-valid-3.png' && echo same",
                        e.t2, e.work, e.work, e.work, e.work, e.work, e.t2, e.work, e.work, e.work);
        T2_CHECK(rc == 0 && out && strstr(out, "same"), "valid.difficulty 0: validation items differ from the world's at difficulty 0: %s", out);
        free(out);
        // the validation of that run probed the image rows once (step 10), for scene only (math has no
        // images): positive norms, two cosines
        rc = t2_test_sh(&out, "cat '%s/freeze2/rows.csv'", e.work);
        double rn = 0, en = 0, cs = 2, cw = 2;
        long rs = 0;
        char fam[16] = "";
        T2_CHECK(rc == 0 && out && strstr(out, "step,family,row_norm,embedding_norm,cosine_between_images,cosine_within_image\n") == out &&
                     sscanf(strchr(out, '\n') + 1, "%ld,%15[^,],%lf,%lf,%lf,%lf", &rs, fam, &rn, &en, &cs, &cw) == 6 && rs == 10 &&
                     !strcmp(fam, "scene") && rn > 0 && en > 0 && cs > -1.0001 && cs < 1.0001 && cw > -1.0001 && cw < 1.0001 &&
                     !strchr(strchr(out, '\n') + 1, '\n')[1],
                 "rows.csv of the validated run: %s", out);
        free(out);
    }

    // 4b. per-prefix weight decay (optim.lr_scale.P.weight_decay): one step at lr 3e-3 with and without
    //     weight_decay 1 on the tower. AdamW's decay is decoupled, so the two runs differ by exactly
    //     -lr·1·p0 on a tensor outside the decay group (a LayerNorm gain), by -lr·(1 - 0.01)·p0 on a
    //     matrix (default weight_decay 0.01), and not at all on the language model.
    {
        run_scene(&e, "decay0", ", \"steps\": 1, \"warmup\": 0", "");
        run_scene(&e, "decay1", ", \"steps\": 1, \"warmup\": 0, \"lr_scale\": {\"vision_tower\": {\"weight_decay\": 1.0}}", "");
        rc = t2_test_sh(&out, "%s -c \"import sys; sys.path.insert(0, '%s/tests/ref'); import st, numpy as np; "
                              "z = st.Checkpoint('%s'); a = st.Checkpoint('%s/decay0/model'); b = st.Checkpoint('%s/decay1/model'); "
                              "g = lambda c, n: np.asarray(c.get(n), np.float64); "
                              "err = lambda n, f: float(np.abs(g(b, n) - g(a, n) + 3e-3 * f * g(z, n)).max() / np.abs(3e-3 * f * g(z, n)).max()); "
                              "ln = 'vision_tower.vision_model.encoder.layers.0.layer_norm1.weight'; "
                              "fc = 'vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight'; "
                              "lm = 'language_model.model.layers.0.mlp.down_proj.weight'; "
                              "print(err(ln, 1.0), err(fc, 0.99), float(np.abs(g(b, lm) - g(a, lm)).max()))\"",
                        e.python, e.src, model, e.work, e.work);
        double eln = 1, efc = 1, dlm = 1;
        T2_CHECK(rc == 0 && out && sscanf(out, "%lf %lf %lf", &eln, &efc, &dlm) == 3, "comparing the decay runs failed: %s", out);
        printf("weight_decay: gain off by %.2g, matrix off by %.2g (relative to lr·wd·p), language model moved %.2g\n", eln, efc, dlm);
        T2_CHECK(eln < 1e-3 && efc < 1e-3 && dlm == 0, "weight_decay per prefix: %g %g %g", eln, efc, dlm);
        free(out);
    }

    // 5. the export answers through t2 ask (the same code path as any llava-hf checkpoint)
    rc = t2_test_sh(&out, "'%s' ask --model '%s/full/model' --image '%s/samples/shapes.png' 'How many shapes are there?' -n 4 --temp 0 2>&1",
                    e.t2, e.work, e.src);
    T2_CHECK(rc == 0, "t2 ask on the trained model failed:\n%s", out);
    free(out);
    struct { const char *name; long steps; const char *extra; const char *flags; const char *want; } bad[] = {
        {"full", 300, "", "", "exists: pass --resume"},                        // restart over a finished run
        {"full", 300, "\"weight_decay\": 0.5, ", "--resume", "differ from the checkpoint"},   // changed recipe
        {"neg", 300, "\"batch\": 0, ", "", "optim.batch: 0 is out of range [1, 4096]"},
        {"huge", 300, "\"batch\": 1099511627776, ", "", "optim.batch: 1099511627776 is out of range"},   // no int overflow
        {"str", 300, "\"lr\": \"x\", ", "", "optim.lr: expected a number, got \"x\""},
        {"frac", 300, "\"accum\": 2.5, ", "", "optim.accum: expected an integer, got 2.5"},
        {"beta", 300, "\"beta1\": 1.0, ", "", "optim.beta1: 1 is out of range"},
        {"eps", 300, "\"eps\": 0, ", "", "optim.eps: 0 is out of range"},
        {"clip", 300, "\"clip\": -1, ", "", "optim.clip: -1 is out of range"},
        {"warm", 5, "", "", "optim.warmup"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        recipe(&e, bad[i].name, bad[i].steps, bad[i].extra);
        rc = t2_test_sh(&out, "'%s' train -q --config '%s/%s.json' %s 2>&1", e.t2, e.work, bad[i].name, bad[i].flags);
        T2_CHECK(rc != 0 && out && strstr(out, bad[i].want), "bad recipe %zu: rc %d, output:\n%s", i, rc, out);
        free(out);
    }
    recipe(&e, "full", 300, "");   // restore
    rc = t2_test_sh(&out, "'%s' train 2>&1", e.t2);
    T2_CHECK(rc != 0 && strstr(out, "--config"), "no --config: %s", out);
    free(out);
    return t2_test_done();
}
