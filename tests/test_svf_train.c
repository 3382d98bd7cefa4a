// test_svf_train.c — REINFORCE for SVF experts (train/svf_train.c) end to end: a tiny LLaVA is
// first trained for a few hundred steps on the world's scene family (t2 train), decomposed
// (t2 svf decompose), and then an expert is trained by `t2 svf train` on an easy synthetic task the
// base gets mostly wrong — every scene question answered "reno" (the tiny fixture vocabulary spells
// it "re" "n" "o"; after 300 steps the base says it for ~15% of the questions and "red" for most) —
// with reward +1 / −1 from the eval scorer. Checked: the run logs every iteration and validation, it
// resumes after being stopped, the kept expert loads with its metadata, and bad invocations are
// refused; --objective nll lowers the reference answers' NLL; --baseline mean zeroes the gradient of a batch whose rewards are all equal. That the reward rises is checked on the shipped t2-tiny (tests/test_t2_tiny.c): on this
// 2-layer, 64-wide fixture the greedy answers barely move within a test's budget.
#include "testutil.h"
#include <cJSON.h>
#include "core/error.h"
#include "core/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    char model[1100], *out = NULL;
    snprintf(model, sizeof model, "%s/base", e.work);
    int rc = t2_test_python(&e, "vlm_fixtures.py", "chatmodel '%s' '%s'", model, e.work);
    T2_CHECK(rc == 0, "vlm_fixtures.py chatmodel failed");
    if (rc) return t2_test_done();
    char recipe[1200], text[4096];
    snprintf(recipe, sizeof recipe, "%s/recipe.json", e.work);
    snprintf(text, sizeof text,
             "{\"out\": \"%s/run\", \"seed\": 2, \"model\": {\"init\": \"%s\", \"export_dtype\": \"F32\"},\n"
             " \"data\": {\"max_len\": 80, \"sources\": [{\"world\": \"scene\"}]},\n"
             " \"optim\": {\"steps\": 300, \"batch\": 8, \"lr\": 3e-3, \"warmup\": 20}, \"checkpoint\": {\"every\": 300}}\n",
             e.work, model);
    T2_CHECK(t2_write_file_atomic(recipe, text, strlen(text)) == 0, "cannot write the recipe");
    rc = t2_test_sh(&out, "'%s' train -q --config '%s' 2>&1 && '%s' svf decompose --model '%s/run/model' 2>&1 && "
                          "'%s' world gen --family scene --split train --n 96 --out '%s/data' 2>/dev/null && "
                          "'%s' world gen --family scene --split valid --n 48 --out '%s/data' 2>/dev/null",
                    e.t2, recipe, e.t2, e.work, e.t2, e.work, e.t2, e.work);
    T2_CHECK(rc == 0, "base training / decomposition / data failed:\n%s", out);
    free(out);
    if (rc) return t2_test_done();
    // the synthetic task: the answer is always "reno" (ten copies: VQA accuracy wants ten references)
    rc = t2_test_sh(&out, "cd '%s/data' && for s in train valid; do sed 's/\"answers\": *\\[[^]]*\\]/\"answers\": [\"reno\", \"reno\", \"reno\", \"reno\", \"reno\", \"reno\", \"reno\", \"reno\", \"reno\", \"reno\"]/' "
                          "scene-$s.jsonl > yes-$s.jsonl; done; grep -c '\"reno\", \"reno\"' yes-train.jsonl", e.work);
    T2_CHECK(rc == 0 && out && atoi(out) == 96, "could not write the synthetic task: %s", out);
    free(out);

    const char *common = "--task yes --iters 24 --batch 16 --lr 2e-2 --clip 1 --valid-every 6 --max-new 4 --seed 3";
    rc = t2_test_sh(&out, "'%s' svf train --model '%s/run/model' --train '%s/data/yes-train.jsonl' --valid '%s/data/yes-valid.jsonl' "
                          "--out '%s/yes.safetensors' %s --max-iters 12 2>&1 && "
                          "'%s' svf train --model '%s/run/model' --train '%s/data/yes-train.jsonl' --valid '%s/data/yes-valid.jsonl' "
                          "--out '%s/yes.safetensors' %s --resume 2>&1",
                    e.t2, e.work, e.work, e.work, e.work, common, e.t2, e.work, e.work, e.work, e.work, common);
    printf("%s", out ? out : "");
    T2_CHECK(rc == 0, "t2 svf train failed");
    T2_CHECK(out && strstr(out, "resuming"), "the second invocation did not resume");
    free(out);
    // the log: validation at the start vs the best kept
    size_t n;
    char path[1200];
    snprintf(path, sizeof path, "%s/yes.safetensors.run/log.csv", e.work);
    char *log = t2_read_file(path, &n);
    T2_CHECK(log != NULL, "no log");
    double start = -1, best = -1;
    int rows = 0;
    for (char *p = log ? strchr(log, '\n') : NULL; p && p[1]; p = strchr(p + 1, '\n')) {
        int it;
        double va;
        double f[6];
        if (sscanf(p + 1, "%d,,,,,,%lf", &it, &va) == 2) { start = va; continue; }
        if (sscanf(p + 1, "%d,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &it, &f[0], &f[1], &f[2], &f[3], &f[4], &va, &f[5]) == 8) {
            rows++;
            if (va > best) best = va;
        }
    }
    free(log);
    printf("validation accuracy: start %.1f, best %.1f over %d iterations\n", start, best, rows);
    T2_CHECK(rows == 24, "log has %d iteration rows, 24 expected", rows);
    T2_CHECK(start >= 0 && best >= start, "validation not recorded: start %.1f, best %.1f", start, best);
    // the expert answers through t2 ask's path (via t2 svf show) and carries its metadata
    rc = t2_test_sh(&out, "'%s' svf show --model '%s/run/model' --expert '%s/yes.safetensors' 2>&1", e.t2, e.work, e.work);
    T2_CHECK(rc == 0 && out && strstr(out, "yes") && strstr(out, "official"), "svf show: %s", out);
    free(out);
    // --baseline mean: on a task no rollout can get right (the answer "qqqq" is never generated within
    // --max-new 1) every reward is −1, so reward minus the batch mean is 0 and the gradient vanishes
    // exactly; without the baseline the same batch has a gradient.
    for (int bl = 0; bl < 2; bl++) {
        rc = t2_test_sh(&out, "cd '%s/data' && sed 's/\"reno\"/\"qqqq\"/g' yes-train.jsonl > never.jsonl && "
                              "'%s' svf train --model '%s/run/model' --train never.jsonl --out '%s/never%d.safetensors' "
                              "--iters 3 --batch 8 --max-new 1 %s -q 2>&1 && cut -d, -f2,6 '%s/never%d.safetensors.run/log.csv'",
                        e.work, e.t2, e.work, e.work, bl, bl ? "--baseline mean" : "", e.work, bl);
        double rew, gn, gmax = 0, rmax = -2;
        int k = 0;
        for (char *p = out ? strchr(out, '\n') : NULL; p && p[1]; p = strchr(p + 1, '\n'))
            if (sscanf(p + 1, "%lf,%lf", &rew, &gn) == 2) k++, gmax = gn > gmax ? gn : gmax, rmax = rew > rmax ? rew : rmax;
        printf("baseline %s: %d iterations, max reward %.2f, max |g| %g\n", bl ? "mean" : "none", k, rmax, gmax);
        T2_CHECK(rc == 0 && k == 3 && rmax == -1, "the never-right task (baseline %d): %s", bl, out);
        if (bl) T2_CHECK(gmax == 0, "--baseline mean: equal rewards left a gradient (|g| %g)", gmax);
        else T2_CHECK(gmax > 0, "without a baseline the all-wrong batch has no gradient");
        free(out);
    }
    // --objective nll: no rollouts; the loss is the reference answers' NLL, which the z-gradient must
    // lower (the base says "reno" for few questions, so its NLL starts high).
    rc = t2_test_sh(&out, "'%s' svf train --model '%s/run/model' --train '%s/data/yes-train.jsonl' --out '%s/nll.safetensors' "
                          "--objective nll --iters 10 --batch 16 --lr 2e-2 --clip 1 --seed 3 -q 2>&1 && "
                          "cut -d, -f3,4 '%s/nll.safetensors.run/log.csv'", e.t2, e.work, e.work, e.work, e.work);
    {
        double acc, l, first = 0, last = 0;
        int k = 0, nan_acc = 0;
        for (char *p = out ? strchr(out, '\n') : NULL; p && p[1]; p = strchr(p + 1, '\n'))
            if (sscanf(p + 1, "%lf,%lf", &acc, &l) == 2) {
                k++, nan_acc += isnan(acc);
                if (k <= 2) first += l / 2;
                if (k >= 9) last += l / 2;
            }
        printf("--objective nll: answer NLL %.3f (iterations 1-2) -> %.3f (9-10)\n", first, last);
        T2_CHECK(rc == 0 && k == 10 && nan_acc == 10, "--objective nll run / log: %s", out);
        T2_CHECK(last < 0.9 * first, "--objective nll did not lower the answers' NLL: %.3f -> %.3f", first, last);
        free(out);
    }
    rc = t2_test_sh(&out, "'%s' svf train --model '%s/run/model' --train '%s/data/yes-train.jsonl' --out '%s/x.safetensors' "
                          "--objective nll --baseline mean 2>&1", e.t2, e.work, e.work, e.work);
    T2_CHECK(rc != 0 && out && strstr(out, "no gradient"), "nll with a baseline: %s", out);
    free(out);
    rc = t2_test_sh(&out, "'%s' svf show --model '%s/run/model' --expert '%s/never1.safetensors' 2>&1", e.t2, e.work, e.work);
    T2_CHECK(rc == 0 && out && strstr(out, "\"baseline\":\"mean\""), "the expert's settings lack the baseline: %s", out);
    free(out);
    // the settings stay JSON whatever the paths hold: a model directory reached through a quote, a
    // backslash and over 1 KB of folder names (it once went through a 1 KB printf buffer, unescaped)
    {
        char dir[1600];
        int len = snprintf(dir, sizeof dir, "%s/q\"uo\\te", e.work);
        for (int k = 0; k < 5; k++) {
            len += snprintf(dir + len, sizeof dir - (size_t)len, "/");
            for (int i = 0; i < 240; i++) dir[len++] = (char)('a' + k);
            dir[len] = 0;
        }
        rc = t2_test_sh(&out, "mkdir -p '%s' && ln -sfn '%s/run/model' '%s/model' && '%s' svf train --model '%s/model' --train "
                              "'%s/data/yes-train.jsonl' --out '%s/long.safetensors' --task 'y\"s' --iters 1 --batch 2 -q 2>&1 && "
                              "'%s' svf show --model '%s/model' --expert '%s/long.safetensors' | sed -n 's/^  settings //p'",
                        dir, e.work, dir, e.t2, dir, e.work, e.work, e.t2, dir, e.work);
        cJSON *j = rc == 0 && out ? cJSON_Parse(out) : NULL;
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(j, "model"));
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(j, "task"));
        char want[1700];
        snprintf(want, sizeof want, "%s/model", dir);
        T2_CHECK(m && !strcmp(m, want) && t && !strcmp(t, "y\"s") && cJSON_GetNumberValue(cJSON_GetObjectItem(j, "iters")) == 1,
                 "settings of a run with a %zu-character model path: %.200s", strlen(want), out ? out : "(none)");
        cJSON_Delete(j);
        free(out);
    }
    // refusals
    rc = t2_test_sh(&out, "'%s' svf train --model '%s/run/model' --train '%s/data/yes-train.jsonl' --out '%s/yes.safetensors' %s 2>&1",
                    e.t2, e.work, e.work, e.work, common);
    T2_CHECK(rc != 0 && out && strstr(out, "--resume"), "restart over a run: %s", out);
    free(out);
    rc = t2_test_sh(&out, "'%s' svf train --model '%s/run/model' --train /nonexistent.jsonl --out '%s/x.safetensors' 2>&1",
                    e.t2, e.work, e.work);
    T2_CHECK(rc != 0 && out && strstr(out, "nonexistent"), "missing train file: %s", out);
    free(out);
    rc = t2_test_sh(&out, "'%s' svf train --model '%s/run/model' --train '%s/data/yes-train.jsonl' --out '%s/x.safetensors' "
                          "--baseline median 2>&1", e.t2, e.work, e.work, e.work);
    T2_CHECK(rc == 2 && out && strstr(out, "--baseline must be none or mean"), "a bad --baseline: %s", out);
    free(out);
    return t2_test_done();
}
