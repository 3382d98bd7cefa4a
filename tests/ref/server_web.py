"""End-to-end browser test of the `t2 serve` demo page, run by tests/test_server_web.c.

usage: server_web.py PORT IMAGE WORK [CHROMIUM CHROMEDRIVER]

Drives Debian's headless Chromium through chromedriver's W3C WebDriver HTTP protocol (urllib only):
loads the page at a phone-width window, picks a sample thumbnail, uploads IMAGE through the file
input, types a question, presses Ask, waits for the streamed answer and the "How it was answered"
section, checks the mixture bars render from a {name: weight} object, and saves screenshots
WORK/page.png (the answer) and WORK/page-mixture.png. Prints "ok NAME" / "FAIL NAME: why" lines;
exits 1 on any failure.
"""
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

PORT, IMAGE, WORK = int(sys.argv[1]), sys.argv[2], sys.argv[3]
CHROMIUM = sys.argv[4] if len(sys.argv) > 4 else "/usr/bin/chromium"
DRIVER = sys.argv[5] if len(sys.argv) > 5 else "/usr/bin/chromedriver"
failed = 0


def check(name, cond, why=""):
    global failed
    print(("ok " if cond else "FAIL ") + name + ("" if cond else ": " + str(why)), flush=True)
    if not cond:
        failed += 1
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


DPORT = free_port()
BASE = "http://127.0.0.1:%d" % DPORT


def wd(method, path, body=None, timeout=60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())["value"]
    except urllib.error.HTTPError as e:
        raise RuntimeError("%s %s: %s" % (method, path, e.read()[:500].decode(errors="replace")))


drv = subprocess.Popen([DRIVER, "--port=%d" % DPORT], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
sid = None
try:
    for _ in range(100):
        try:
            if wd("GET", "/status", timeout=2).get("ready"):
                break
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": CHROMIUM,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=412,1100", "--user-data-dir=" + os.path.join(WORK, "chromium-profile")]}}}}
    sid = wd("POST", "/session", caps)["sessionId"]
    S = "/session/" + sid
    ELEM = "element-6066-11e4-a52e-4f735466cecf"

    def find(css):
        return wd("POST", S + "/element", {"using": "css selector", "value": css})[ELEM]

    def js(script, *args):
        return wd("POST", S + "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(script, secs=30):
        t0 = time.time()
        while time.time() - t0 < secs:
            v = js(script)
            if v:
                return v
            time.sleep(0.1)
        return None

    def screenshot(name):
        png = base64.b64decode(wd("GET", S + "/screenshot"))
        with open(os.path.join(WORK, name), "wb") as f:
            f.write(png)
        return png

    wd("POST", S + "/url", {"url": "http://127.0.0.1:%d/" % PORT})
    check("page title", "t2" in wd("GET", S + "/title"))
    check("model shown", wait_for("const t = document.getElementById('model').textContent;"
                                  "return t !== 'loading…' && t !== 'model unavailable' ? t : null;", 10))
    check("phone width: no horizontal scroll",
          js("return document.documentElement.scrollWidth <= window.innerWidth;"),
          js("return [document.documentElement.scrollWidth, window.innerWidth];"))
    # A sample thumbnail puts its image in the preview.
    n_samples = wait_for("return document.querySelectorAll('#samples button').length;", 10) or 0
    if check("samples listed", n_samples > 0):
        wd("POST", S + "/element/%s/click" % find("#samples button"), {})
        check("sample chosen", wait_for("const p = document.getElementById('preview');"
                                        "return !p.hidden && p.src.startsWith('data:image/');", 10))
    # Upload through the file input, ask, wait for the streamed answer.
    wd("POST", S + "/element/%s/value" % find("#file"), {"text": os.path.abspath(IMAGE)})
    check("image uploaded", wait_for("const p = document.getElementById('preview');"
                                     "return !p.hidden && p.src.startsWith('data:image/png');", 10))
    wd("POST", S + "/element/%s/value" % find("#question"), {"text": "What is in the picture?"})
    wd("POST", S + "/element/%s/click" % find("#ask"), {})
    done = wait_for("const a = document.getElementById('answer');"
                    "return a.dataset.done === '1' && !document.getElementById('how').hidden;", 60)
    err = js("const e = document.getElementById('error'); return e.hidden ? '' : e.textContent;")
    check("answer streamed", done and not err, err)
    answer = js("return document.getElementById('answer').textContent;")
    check("answer text", isinstance(answer, str) and len(answer) > 0, repr(answer))
    how = js("return ['how-adapt', 'how-expert', 'how-first', 'how-second', 'how-tokens']"
             ".map(id => document.getElementById(id).textContent);")
    check("how it was answered", how[0] == "none" and how[1] == "none" and how[2] == "0.0 ms"
          and how[3].endswith("ms") and "generated" in how[4], how)
    check("no mixture shown without experts", js("return document.getElementById('mixture').hidden;"))
    js("document.getElementById('answer-card').scrollIntoView({block: 'end'});")
    png = screenshot("page.png")
    check("screenshot", png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000, len(png))
    # The mixture bars, fed as the response's t2.mixture will be.
    js("window.t2RenderMixture({'textvqa': 0.62, 'math': 0.25, 'chartqa': 0.13});"
       "document.getElementById('how').scrollIntoView();")
    bars = js("return [...document.querySelectorAll('#mixture-bars .bar')].map(b => "
              "[b.querySelector('.name').textContent, b.querySelector('.fill').style.width]);")
    check("mixture bars", not js("return document.getElementById('mixture').hidden;")
          and [(n, round(float(w.rstrip("%")), 1)) for n, w in bars] == [("textvqa", 100.0), ("math", 40.3), ("chartqa", 21.0)],
          bars)
    screenshot("page-mixture.png")
    # A bad request shows the server's message.
    js("document.getElementById('adapt').insertAdjacentHTML('beforeend', '<option value=\"prompt\">prompt</option>');"
       "document.getElementById('adapt').value = 'prompt';")
    wd("POST", S + "/element/%s/click" % find("#ask"), {})
    err = wait_for("const e = document.getElementById('error'); return e.hidden ? null : e.textContent;", 20)
    check("error shown", err and "not available" in err, err)
finally:
    if sid:
        try:
            wd("DELETE", "/session/" + sid)
        except Exception:  # noqa: BLE001
            pass
    drv.terminate()
    try:
        drv.wait(10)
    except subprocess.TimeoutExpired:
        drv.kill()

print("%d failed" % failed)
sys.exit(1 if failed else 0)
