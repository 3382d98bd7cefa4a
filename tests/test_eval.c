// test_eval.c — `t2 eval` end to end on a tiny random LLaVA: the reports exist and agree with the
// samples; a run killed part-way and resumed (also with a torn last line) gives the same results as
// an uninterrupted one; `t2 eval score` scores a predictions file by the official rules (hand-worked
// VQA accuracies); --compare; clear errors for bad flags and files.
#include "testutil.h"
#include "core/util.h"
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NITEMS 120   // enough that a kill lands part-way

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
}

static int count_lines(const char *path) {
    char *t = t2_read_file(path, NULL);
    int n = 0;
    for (char *p = t; p && *p; p++) n += *p == '\n';
    free(t);
    return n;
}

// overall score and n, and per-task scores, of DIR/results.json as one comparable string.
static char *summary(const char *dir) {
    char path[2048];
    snprintf(path, sizeof path, "%s/results.json", dir);
    cJSON *j = t2_json_load(path);
    if (!j) return t2_strdup("(no results.json)");
    char buf[4096];
    const cJSON *ov = cJSON_GetObjectItemCaseSensitive(j, "overall");
    size_t k = (size_t)snprintf(buf, sizeof buf, "overall %.6f n %d;", t2_json_num(ov, "score", -1), (int)t2_json_num(ov, "n", -1));
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "tasks"))
        k += (size_t)snprintf(buf + k, sizeof buf - k, " %s %.6f n %d;", e->string, t2_json_num(e, "score", -1),
                              (int)t2_json_num(e, "n", -1));
    cJSON_Delete(j);
    return t2_strdup(buf);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    char model[1024], data[1024], out1[1024], out2[1024], out3[1024], *log = NULL;
    snprintf(model, sizeof model, "%s/model", e.work);
    T2_CHECK(t2_test_python(&e, "vlm_fixtures.py", "images '%s'", e.work) == 0 &&
             t2_test_python(&e, "vlm_fixtures.py", "chatmodel '%s' '%s'", model, e.work) == 0, "fixtures");
    // A generic JSONL benchmark: image items (VQA metric, 10 answers) and text items (exact match).
    snprintf(data, sizeof data, "%s/bench.jsonl", e.work);
    FILE *f = fopen(data, "w");
    for (int i = 0; i < NITEMS; i++) {
        if (i % 2 == 0)
            fprintf(f, "{\"id\": \"img%d\", \"image\": \"%s\", \"question\": \"What colour is the band %d?\", "
                       "\"answers\": [\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\"], "
                       "\"task\": \"scene\"}\n", i, i % 4 ? "wide.png" : "tall.png", i);
        else
            fprintf(f, "{\"id\": \"txt%d\", \"question\": \"What is %d plus 1?\", \"answers\": [\"%d\"], \"task\": \"math\"}\n",
                    i, i, i + 1);
    }
    fclose(f);
    snprintf(out1, sizeof out1, "%s/run-full", e.work);
    snprintf(out2, sizeof out2, "%s/run-killed", e.work);
    snprintf(out3, sizeof out3, "%s/run-torn", e.work);
    int rc = t2_test_sh(&log, "'%s' eval --model '%s' --bench jsonl --data '%s' --images '%s' --out '%s' -n 4 2>&1", e.t2,
                        model, data, e.work, out1);
    T2_CHECK(rc == 0 && strstr(log, "| **overall** | 120 |"), "full run: rc %d '%s'", rc, log);
    free(log);
    char path[2048];
    snprintf(path, sizeof path, "%s/samples.jsonl", out1);
    T2_CHECK(count_lines(path) == NITEMS, "samples.jsonl has %d lines", count_lines(path));
    char *full = summary(out1);
    T2_CHECK(strstr(full, "overall") && strstr(full, "scene") && strstr(full, "math"), "results: %s", full);

    // Kill -9 part-way through, then --resume.
    rc = t2_test_sh(NULL, "'%s' eval --model '%s' --bench jsonl --data '%s' --images '%s' --out '%s' -n 4 -q >/dev/null 2>&1 & "
                    "pid=$!; for i in $(seq 1 400); do [ -f '%s/samples.jsonl' ] && [ $(wc -l < '%s/samples.jsonl') -ge 3 ] && break; "
                    "sleep 0.01; done; kill -9 $pid; wait $pid; true", e.t2, model, data, e.work, out2, out2, out2);
    snprintf(path, sizeof path, "%s/samples.jsonl", out2);
    int before = count_lines(path);
    T2_CHECK(before >= 3 && before < NITEMS, "the killed run had written %d of %d lines", before, NITEMS);
    rc = t2_test_sh(&log, "'%s' eval --model '%s' --bench jsonl --data '%s' --images '%s' --out '%s' -n 4 --resume 2>&1", e.t2,
                    model, data, e.work, out2);
    T2_CHECK(rc == 0, "resume: %s", log);
    free(log);
    char *resumed = summary(out2);
    T2_CHECK(!strcmp(full, resumed), "resumed results differ:\n  full:    %s\n  resumed: %s", full, resumed);
    T2_CHECK(count_lines(path) == NITEMS, "resumed samples.jsonl has %d lines", count_lines(path));
    free(resumed);

    // A torn last line (the process died mid-write) is dropped and that item redone.
    rc = t2_test_sh(NULL, "mkdir -p '%s' && head -c $(( $(head -n 3 '%s/samples.jsonl' | wc -c) + 25 )) '%s/samples.jsonl' > '%s/samples.jsonl'",
                    out3, out1, out1, out3);
    rc = t2_test_sh(&log, "'%s' eval --model '%s' --bench jsonl --data '%s' --images '%s' --out '%s' -n 4 --resume -q 2>&1", e.t2,
                    model, data, e.work, out3);
    char *torn = summary(out3);
    T2_CHECK(rc == 0 && !strcmp(full, torn), "torn-line resume: rc %d\n  full: %s\n  torn: %s\n%s", rc, full, torn, log);
    free(torn);
    free(log);
    // --resume refuses a samples file that is not this run's, naming the line (it used to add any
    // "score" it found, and to drop everything after a bad line as if it were torn)
    static const struct { const char *edit, *expect; } badres[] = {
        {"sed -i '2s/\"score\":[0-9.e+-]*/\"score\":57/'", "line 2 (id 'txt1'): \"score\" is not a number in [0, 1]"},
        {"sed -i '2s/\"score\":[0-9.e+-]*/\"score\":\"abc\"/'", "\"score\" is not a number"},
        {"sed -i '3s/\"id\":\"img2\"/\"id\":\"elsewhere7\"/'", "line 3: id 'elsewhere7' is not in the data"},
        {"sed -i '3s/\"id\":\"img2\"/\"id\":\"img0\"/'", "line 3: id 'img0' appears twice"},
        {"sed -i '2s/.*/not json/'", "line 2 is not a sample"},
    };
    for (size_t i = 0; i < sizeof badres / sizeof badres[0]; i++) {
        rc = t2_test_sh(&log, "rm -rf '%s' && mkdir -p '%s' && head -n 5 '%s/samples.jsonl' > '%s/samples.jsonl' && %s '%s/samples.jsonl' && "
                              "cp '%s/results.json' '%s/' && '%s' eval --model '%s' --bench jsonl --data '%s' --images '%s' --out '%s' "
                              "-n 4 --resume -q 2>&1; echo rc=$?; wc -l < '%s/samples.jsonl'; ls '%s'",
                        out3, out3, out1, out3, badres[i].edit, out3, out1, out3, e.t2, model, data, e.work, out3, out3, out3);
        T2_CHECK(log && strstr(log, badres[i].expect) && strstr(log, "rc=1\n5\n") && strstr(log, "results.json"),
                 "resume over a bad samples file (%s): %s", badres[i].expect, log);
        free(log);
    }
    // An item that fails while its decode batch is being prepared (here: a prompt longer than the
    // context) is an error naming it, not a crash (the batch's later prompts were freed uninitialised);
    // and the run it replaced leaves no results.json behind that would claim a score for the new,
    // partial samples.
    {
        char badd[1100], outb[1100];
        snprintf(badd, sizeof badd, "%s/long.jsonl", e.work);
        snprintf(outb, sizeof outb, "%s/run-bad", e.work);
        FILE *lf = fopen(badd, "w");
        fprintf(lf, "{\"id\": \"u1\", \"question\": \"What is 1 plus 1?\", \"answers\": [\"2\"]}\n{\"id\": \"u2\", \"question\": \"");
        for (int i = 0; i < 3000; i++) fputs("what ", lf);
        fprintf(lf, "?\", \"answers\": [\"x\"]}\n{\"id\": \"u3\", \"question\": \"What?\", \"answers\": [\"x\"]}\n"
                    "{\"id\": \"u4\", \"question\": \"What?\", \"answers\": [\"x\"]}\n");
        fclose(lf);
        rc = t2_test_sh(&log, "rm -rf '%s' && cp -r '%s' '%s' && '%s' eval --model '%s' --bench jsonl --data '%s' --out '%s' -n 4 -q 2>&1; "
                              "echo rc=$?; ls '%s'", outb, out1, outb, e.t2, model, badd, outb, outb);
        T2_CHECK(log && strstr(log, "item 2 (id u2)") && strstr(log, "context") && strstr(log, "rc=1\n") &&
                     !strstr(log, "results.json") && !strstr(log, "chart.png"),
                 "a bad item mid-batch: %s", log);
        free(log);
        // text that is not UTF-8 is refused when the file is read, naming the line and the field;
        // --skip-bad skips that item
        snprintf(badd, sizeof badd, "%s/badutf.jsonl", e.work);
        write_text(badd, "{\"id\": \"u1\", \"question\": \"What is 1 plus 1?\", \"answers\": [\"2\"]}\n"
                         "{\"id\": \"u2\", \"question\": \"Wh\xff" "at?\", \"answers\": [\"x\"]}\n"
                         "{\"id\": \"u3\", \"question\": \"What?\", \"answers\": [\"x\", \"\xc3\"]}\n");
        rc = t2_test_sh(&log, "'%s' eval --model '%s' --bench jsonl --data '%s' --out '%s' -n 4 -q 2>&1; echo rc=$?; "
                              "'%s' eval --model '%s' --bench jsonl --data '%s' --out '%s' -n 4 --skip-bad 2>&1; echo rc=$?",
                        e.t2, model, badd, outb, e.t2, model, badd, outb);
        T2_CHECK(log && strstr(log, "line 2") && strstr(log, "\"question\" is not valid UTF-8 (byte 2)") && strstr(log, "rc=1\n") &&
                     strstr(log, "| **overall** | 1 |") && strstr(log, "rc=0\n"),
                 "text that is not UTF-8: %s", log);
        free(log);
    }
    // --quiet: nothing on stderr (the score table still goes to stdout)
    rc = t2_test_sh(&log, "'%s' eval --model '%s' --bench jsonl --data '%s' --images '%s' --out '%s/quiet' -n 4 -q 2>&1 >/dev/null",
                    e.t2, model, data, e.work, e.work);
    T2_CHECK(rc == 0 && log[0] == 0, "eval -q wrote to stderr (rc %d): %s", rc, log);
    free(log);

    // t2 eval score: official VQA accuracy on hand-worked predictions (no model).
    char vq[1024], pred[1024], outs[1024];
    snprintf(vq, sizeof vq, "%s/vqa.jsonl", e.work);
    snprintf(pred, sizeof pred, "%s/pred.json", e.work);
    snprintf(outs, sizeof outs, "%s/scored", e.work);
    write_text(vq,
        "{\"id\": \"1\", \"question\": \"q\", \"answers\": [\"two\",\"2\",\"2\",\"2\",\"3\",\"3\",\"3\",\"3\",\"3\",\"3\"], \"metric\": \"vqa\"}\n"
        "{\"id\": \"2\", \"question\": \"q\", \"answers\": [\"a dog\",\"dog\",\"cat\",\"cat\",\"cat\",\"cat\",\"cat\",\"cat\",\"cat\",\"cat\"], \"metric\": \"vqa\"}\n"
        "{\"id\": \"3\", \"question\": \"q\", \"answers\": [\"yes\",\"yes\",\"yes\",\"yes\",\"yes\",\"yes\",\"yes\",\"yes\",\"yes\",\"yes\"], \"metric\": \"vqa\"}\n"
        "{\"id\": \"4\", \"question\": \"q\", \"answers\": [\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\",\"red\"], \"metric\": \"vqa\"}\n");
    // Official vqaEval.py: the prediction is normalised fully, the human answers only by punctuation.
    // 1: "2" matches 3 humans ("two" stays "two") → 0.9; 2: "Dog." → "dog" matches 1 ("a dog" stays) → 0.3;
    // 3: "Yes" → "yes" → 1.0; 4: missing → 0. Mean 0.55.
    write_text(pred, "[{\"question_id\": \"1\", \"answer\": \"2\"}, {\"question_id\": \"2\", \"answer\": \"Dog.\"}, "
                     "{\"question_id\": 3, \"answer\": \"Yes\"}]");
    rc = t2_test_sh(&log, "'%s' eval score --bench jsonl --data '%s' --predictions '%s' --out '%s' 2>&1", e.t2, vq, pred, outs);
    T2_CHECK(rc == 0 && strstr(log, "| **overall** | 4 | 55.00 |") && strstr(log, "1 item(s) had no prediction"),
             "eval score: rc %d '%s'", rc, log);
    free(log);

    // Predictions files: JSONL with a byte-order mark, CRLF and blank lines scores the same; an error
    // names the right line; no prediction for any item is an error; unknown ids and items predicted
    // twice are reported; a directory is refused as such.
    write_text(pred, "\xEF\xBB\xBF{\"id\": \"1\", \"prediction\": \"2\"}\r\n\r\n{\"id\": \"2\", \"prediction\": \"Dog.\"}\r\n"
                     "   \n{\"id\": 3, \"prediction\": \"Yes\"}\n{\"id\": 3, \"prediction\": \"no\"}\n{\"id\": \"99\", \"prediction\": \"x\"}\n");
    rc = t2_test_sh(&log, "'%s' eval score --bench jsonl --data '%s' --predictions '%s' 2>&1", e.t2, vq, pred);
    T2_CHECK(rc == 0 && strstr(log, "| **overall** | 4 | 55.00 |") && strstr(log, "1 prediction(s) name no item of the data (the first: id '99')") &&
                 strstr(log, "1 item(s) predicted more than once (the first: id '3')"),
             "eval score, JSONL: rc %d '%s'", rc, log);
    free(log);
    write_text(pred, "{\"id\": \"1\", \"prediction\": \"2\"}\n\n\n{\"id\": \"2\", \"prediction\":\n");
    rc = t2_test_sh(&log, "'%s' eval score --bench jsonl --data '%s' --predictions '%s' 2>&1", e.t2, vq, pred);
    T2_CHECK(rc == 1 && strstr(log, "line 4 is not JSON"), "eval score, a bad line 4: rc %d '%s'", rc, log);
    free(log);
    static const char *const nomatch[] = {"", "[]", "[{\"question_id\": \"zzz\", \"answer\": \"5\"}]"};
    for (int i = 0; i < 3; i++) {
        write_text(pred, nomatch[i]);
        rc = t2_test_sh(&log, "'%s' eval score --bench jsonl --data '%s' --predictions '%s' 2>&1", e.t2, vq, pred);
        T2_CHECK(rc == 1 && strstr(log, "names an item of the data"), "eval score, predictions '%s': rc %d '%s'", nomatch[i], rc, log);
        free(log);
    }
    rc = t2_test_sh(&log, "'%s' eval score --bench jsonl --data '%s' --predictions '%s' 2>&1", e.t2, vq, e.work);
    T2_CHECK(rc == 1 && strstr(log, "is a directory"), "eval score, a directory: rc %d '%s'", rc, log);
    free(log);

    // --compare: both runs side by side.
    char cmp[1100];
    snprintf(cmp, sizeof cmp, "%s/cmp", e.work);
    rc = t2_test_sh(&log, "'%s' eval --compare '%s' '%s' --out '%s' 2>&1", e.t2, out1, outs, cmp);
    T2_CHECK(rc == 0 && strstr(log, "| task |") && strstr(log, "**overall**") && strstr(log, "55.00"), "compare: '%s'", log);
    free(log);
    // --compare refuses a results.json that t2 eval did not write, naming the file and what is wrong
    rc = t2_test_sh(&log, "mkdir -p '%s/fake1' '%s/fake2' && echo '{\"format\": \"t2-eval-results/1\", \"tasks\": {}}' > '%s/fake1/results.json' && "
                          "echo '{\"format\": \"t2-eval-results/1\", \"overall\": {\"score\": 1e308, \"n\": 3}, \"tasks\": {}}' > '%s/fake2/results.json' && "
                          "'%s' eval --compare '%s' '%s/fake1' 2>&1; echo rc=$?; '%s' eval --compare '%s' '%s/fake2' 2>&1; echo rc=$?",
                    e.work, e.work, e.work, e.work, e.t2, out1, e.work, e.t2, out1, e.work);
    T2_CHECK(log && strstr(log, "fake1/results.json: \"overall\" needs") && strstr(log, "fake2/results.json: \"overall\" needs") &&
                 !strstr(log, "rc=0"), "compare over bad results: %s", log);
    free(log);
    // The charts are PNGs that PIL can open.
    rc = t2_test_sh(&log, "'%s' -c \"from PIL import Image; [print(Image.open(p).size) for p in ['%s/chart.png', '%s/compare.png']]\" 2>&1",
                    e.python, out1, cmp);
    T2_CHECK(rc == 0, "charts: %s", log);
    free(log);

    // Every reader's format runs end to end through the model (fixtures of tests/ref/bench_fixtures.py).
    char bf[1024];
    snprintf(bf, sizeof bf, "%s/benchfx", e.work);
    T2_CHECK(t2_test_python(&e, "bench_fixtures.py", "'%s' >/dev/null", bf) == 0, "bench fixtures");
    static const struct { const char *kind, *data, *images; } fmts[] = {
        {"textvqa", "textvqa/TextVQA_0.5.1_val.json", "textvqa/train_images"},
        {"vqav2", "vqav2/v2_OpenEnded_mscoco_val2014_questions.json", "vqav2/val2014"},
        {"okvqa", "okvqa/OpenEnded_mscoco_val2014_questions.json", "okvqa/val2014"},
        {"docvqa", "docvqa/val_v1.0.json", "docvqa"},
        {"gsm8k", "gsm8k/test.jsonl", NULL},
        {"arc", "arc/ARC-Challenge-Test.jsonl", NULL},
    };
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        char o[1100], img[1100] = "";
        snprintf(o, sizeof o, "%s/out-%s", e.work, fmts[i].kind);
        if (fmts[i].images) snprintf(img, sizeof img, "--images '%s/%s'", bf, fmts[i].images);
        rc = t2_test_sh(&log, "'%s' eval --model '%s' --bench %s --data '%s/%s' %s --limit 3 -n 3 --out '%s' -q 2>&1", e.t2,
                        model, fmts[i].kind, bf, fmts[i].data, img, o);
        char *sm = summary(o);
        T2_CHECK(rc == 0 && strstr(sm, "overall") && !strstr(sm, "n 0;"), "%s: rc %d %s\n%s", fmts[i].kind, rc, sm, log);
        free(sm);
        free(log);
    }

    // Errors.
    static const struct { const char *args, *expect; } bad[] = {
        {"--bench nope --data x", "unknown --bench"},
        {"--bench jsonl", "required"},
        {"score --bench jsonl --data %s", "--predictions"},
        {"score --bench jsonl --data %s --predictions /nonexistent.json", "nonexistent"},
        {"--compare /nonexistent-dir", "nonexistent-dir"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[2048];
        snprintf(args, sizeof args, bad[i].args, vq);
        rc = t2_test_sh(&log, "'%s' eval %s 2>&1", e.t2, args);
        T2_CHECK(rc != 0 && strstr(log, bad[i].expect), "'%s': rc %d '%s'", args, rc, log);
        free(log);
    }
    free(full);
    return t2_test_done();
}
