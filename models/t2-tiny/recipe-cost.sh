#!/bin/sh
# recipe-cost.sh T2_BINARY [STEPS] [THREADS] — what the recipe would cost today: every stage of
# docs/t2-tiny.md's recipe run for STEPS steps (default 100) with this binary on THREADS threads
# (default 2), its mean time per step over steps 11..STEPS times the steps the stage runs in the recipe
# (docs/t2-tiny.md: stage 1 is stopped at 4000 of its 16000 steps — all of them with the tower frozen —
# and stage 2 at 2000 of 7000; the others run to the end). `t2 tower train` (tower.sh)
# is measured over 300 of its 7000 + 500 steps. Throughput does not depend on the weights' values, so
# every stage starts from the shipped model (stage 1 from its random init); the data are the stages'
# own (stage7-data.sh and stage13-data.sh are run first when their files are missing). Validation and
# checkpoints are left out (the recipe validates about 80 times on 50–600 items: a few minutes).
# Prints one line per stage and the total as wall hours and CPU-hours (wall × THREADS). Run from the
# repository root; scratch under runs/recipe-cost/.
set -e
t2=$1; steps=${2:-100}; threads=${3:-2}
[ -n "$t2" ] || { echo "usage: $0 T2_BINARY [STEPS] [THREADS]" >&2; exit 2; }
here=$(dirname "$0"); work=runs/recipe-cost
mkdir -p "$work"
[ -s runs/world-doors/doors.jsonl ] || sh "$here/stage7-data.sh" "$t2" >/dev/null
[ -s runs/world-plates1/plates.jsonl ] || sh "$here/stage13-data.sh" "$t2" >/dev/null
/usr/bin/python3 - "$t2" "$steps" "$threads" "$here" "$work" <<'PY'
import csv, json, os, shutil, statistics, subprocess, sys
t2, steps, threads, here, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
root = os.getcwd()
ran = {1: 4000, 2: 2000}   # --max-steps of stages 1 and 2 in docs/t2-tiny.md's recipe
stages = [("1", "train.json")] + [(str(k), "train-stage%d.json" % k) for k in range(2, 16)]
total = 0.0
for name, f in stages:
    r = json.load(open(os.path.join(here, f)))
    n = ran.get(int(name), r["optim"]["steps"])
    r["out"] = os.path.join(root, work, "run")
    if r["model"].get("init", "random") != "random":
        r["model"]["init"] = os.path.join(root, here)
    r["model"]["tokenizer"] = os.path.join(root, here)
    for s in r["data"]["sources"]:
        if "jsonl" in s:
            s["jsonl"] = os.path.join(root, here, s["jsonl"])
    r["valid"] = {"every": 0}
    r["checkpoint"] = {"every": 100000}
    json.dump(r, open(os.path.join(work, "recipe.json"), "w"))
    shutil.rmtree(r["out"], ignore_errors=True)
    subprocess.run([t2, "train", "-q", "--config", os.path.join(work, "recipe.json"), "--threads", str(threads),
                    "--max-steps", str(steps)], check=True)
    rows = list(csv.DictReader(open(os.path.join(r["out"], "log.csv"))))
    dt = (float(rows[-1]["elapsed_s"]) - float(rows[9]["elapsed_s"])) / (len(rows) - 10)
    total += dt * n
    print("stage %-2s %6d steps × %.3f s = %5.1f min" % (name, n, dt, dt * n / 60), flush=True)
# t2 tower train: tower.sh's two runs (7000 + 500 steps, batch 32, one thread)
tw = os.path.join(work, "tower")
shutil.rmtree(tw, ignore_errors=True)
subprocess.run([t2, "tower", "train", "--model", here, "--out", tw, "--steps", "12000", "--max-steps", "300",
                "--batch", "32", "--lr", "2e-3", "--char-weight", "10", "--every", "100000", "--log-every", "1",
                "--threads", "1", "--quiet"], check=True)
rows = list(csv.DictReader(open(os.path.join(tw, "log.csv"))))[10:]
col = [k for k in rows[0] if k.startswith("images")][0]
dt = 32 / statistics.median(float(x[col]) for x in rows)
print("tower    %6d steps × %.3f s = %5.1f min (one thread)" % (7500, dt, dt * 7500 / 60))
cpu = total * threads + dt * 7500
print("total: %.2f h wall (stages on %d threads) + %.2f h (tower, one thread) = %.2f CPU-hours" % (
    total / 3600, threads, dt * 7500 / 3600, cpu / 3600))
PY
