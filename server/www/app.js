// t2 demo page: pick/drop an image (or a sample), ask, stream the answer from /v1/chat/completions,
// and show how it was answered (adaptation, expert or mixture bars, first/second pass time).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const MAX_SIDE = 1536;          // larger images are scaled down in the browser before upload
  let imageUrl = null;            // data: URI of the chosen image
  let modelId = null;
  let controller = null;

  // ---- model, health, samples ----
  async function loadModel() {
    try {
      const r = await fetch("/v1/models");
      const j = await r.json();
      const m = j.data && j.data[0];
      if (!m) throw new Error("no model");
      modelId = m.id;
      const meta = m.meta || {};
      $("model").textContent = m.id + (meta.vision === false ? " (text only)" : "");
      const sel = $("adapt");
      for (const name of meta.experts || []) {
        const o = document.createElement("option");
        o.value = "expert:" + name;
        o.textContent = "expert: " + name;
        sel.appendChild(o);
      }
      if ((meta.experts || []).length) {
        for (const s of ["prompt", "classifier"]) {
          const o = document.createElement("option");
          o.value = s; o.textContent = s;
          sel.appendChild(o);
        }
      }
    } catch (e) {
      $("model").textContent = "model unavailable";
    }
  }

  async function loadHealth() {
    const el = $("health");
    try {
      const r = await fetch("/health");
      const j = await r.json();
      el.textContent = r.ok ? `ready · ${j.slots_busy}/${j.slots} busy` : j.status;
      el.className = "pill " + (r.ok ? "ok" : "bad");
    } catch (e) {
      el.textContent = "offline";
      el.className = "pill bad";
    }
  }

  async function loadSamples() {
    try {
      const r = await fetch("/v1/samples");
      const j = await r.json();
      const box = $("samples");
      for (const s of j.data || []) {
        const b = document.createElement("button");
        b.type = "button";
        b.title = s.name;
        b.dataset.name = s.name;
        const img = document.createElement("img");
        img.src = s.url;
        img.alt = s.name;
        b.appendChild(img);
        b.addEventListener("click", async () => {
          const blob = await (await fetch(s.url)).blob();
          await useFile(blob);
          for (const x of box.children) x.classList.toggle("sel", x === b);
        });
        box.appendChild(b);
      }
      $("samples-wrap").hidden = !(j.data && j.data.length);
    } catch (e) { /* no samples: the section stays hidden */ }
  }

  // ---- the image ----
  function readAsDataURL(blob) {
    return new Promise((ok, fail) => {
      const fr = new FileReader();
      fr.onload = () => ok(fr.result);
      fr.onerror = () => fail(fr.error);
      fr.readAsDataURL(blob);
    });
  }

  function loadImage(src) {
    return new Promise((ok, fail) => {
      const im = new Image();
      im.onload = () => ok(im);
      im.onerror = () => fail(new Error("the browser cannot read this image"));
      im.src = src;
    });
  }

  async function useFile(blob) {
    showError(null);
    if (!/^image\/(png|jpeg)$/.test(blob.type)) {
      showError("Please choose a PNG or JPEG image (got " + (blob.type || "an unknown type") + ").");
      return;
    }
    let url = await readAsDataURL(blob);
    try {
      const im = await loadImage(url);
      const side = Math.max(im.naturalWidth, im.naturalHeight);
      if (side > MAX_SIDE) {            // phone photos: scale down before sending
        const k = MAX_SIDE / side;
        const c = document.createElement("canvas");
        c.width = Math.round(im.naturalWidth * k);
        c.height = Math.round(im.naturalHeight * k);
        c.getContext("2d").drawImage(im, 0, 0, c.width, c.height);
        url = c.toDataURL("image/jpeg", 0.9);
      }
    } catch (e) {
      showError(e.message);
      return;
    }
    imageUrl = url;
    $("preview").src = url;
    $("preview").hidden = false;
    $("drop-hint").hidden = true;
    $("clear-image").hidden = false;
  }

  function clearImage() {
    imageUrl = null;
    $("preview").hidden = true;
    $("preview").removeAttribute("src");
    $("drop-hint").hidden = false;
    $("clear-image").hidden = true;
    $("file").value = "";
    for (const x of $("samples").children) x.classList.remove("sel");
  }

  // ---- how it was answered ----
  // Mixture bars from the response's t2.mixture: {expert name: weight}. Exposed for tests and later use.
  function renderMixture(mixture) {
    const box = $("mixture-bars");
    box.textContent = "";
    const entries = Object.entries(mixture || {}).filter(([, w]) => typeof w === "number" && isFinite(w));
    $("mixture").hidden = entries.length === 0;
    if (!entries.length) return;
    entries.sort((a, b) => b[1] - a[1]);
    const max = Math.max(...entries.map(([, w]) => Math.abs(w)), 1e-9);
    for (const [name, w] of entries) {
      const row = document.createElement("div");
      row.className = "bar";
      const n = document.createElement("span");
      n.className = "name";
      n.textContent = name;
      n.title = name;
      const track = document.createElement("div");
      track.className = "track";
      const fill = document.createElement("div");
      fill.className = "fill";
      fill.style.width = (100 * Math.abs(w) / max).toFixed(1) + "%";
      track.appendChild(fill);
      const v = document.createElement("span");
      v.textContent = w.toFixed(2);
      row.append(n, track, v);
      box.appendChild(row);
    }
  }
  window.t2RenderMixture = renderMixture;

  function renderHow(t2, usage, timings) {
    if (!t2) return;
    $("how").hidden = false;
    $("how-adapt").textContent = t2.adapt || "none";
    $("how-expert").textContent = t2.expert ? t2.expert : (t2.mixture ? "mixture (below)" : "none");
    $("how-first").textContent = fmtMs(t2.first_pass_ms);
    $("how-second").textContent = fmtMs(t2.second_pass_ms);
    if (usage) {
      let s = `${usage.prompt_tokens} prompt, ${usage.completion_tokens} generated`;
      if (timings && timings.decode_ms > 0 && usage.completion_tokens > 0)
        s += ` · ${(usage.completion_tokens / (timings.decode_ms / 1000)).toFixed(1)} tok/s`;
      $("how-tokens").textContent = s;
    }
    renderMixture(t2.mixture);
  }

  function fmtMs(v) {
    if (typeof v !== "number") return "–";
    return v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(1) + " ms";
  }

  function showError(msg) {
    const el = $("error");
    el.hidden = !msg;
    el.textContent = msg || "";
  }

  // ---- asking ----
  async function ask(ev) {
    ev.preventDefault();
    const q = $("question").value.trim();
    if (!q) return;
    const content = [];
    if (imageUrl) content.push({ type: "image_url", image_url: { url: imageUrl } });
    content.push({ type: "text", text: q });
    const body = {
      model: modelId || undefined,
      messages: [{ role: "user", content }],
      stream: true,
      temperature: Number($("temperature").value) || 0,
      max_tokens: Math.max(1, Number($("max-tokens").value) || 128),
      t2: { adapt: $("adapt").value },
    };
    showError(null);
    const answer = $("answer");
    answer.textContent = "";
    answer.classList.add("streaming");
    $("how").hidden = true;
    $("ask").disabled = true;
    $("stop").hidden = false;
    controller = new AbortController();
    try {
      const r = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!r.ok) {
        let msg = `HTTP ${r.status}`;
        try { const j = await r.json(); if (j.error) msg += ": " + j.error.message; } catch (e) { /* not JSON */ }
        if (r.status === 503) msg += " (the server is busy; try again in a moment)";
        throw new Error(msg);
      }
      await readStream(r, answer);
    } catch (e) {
      if (e.name !== "AbortError") showError(e.message);
    } finally {
      answer.classList.remove("streaming");
      $("ask").disabled = false;
      $("stop").hidden = true;
      controller = null;
      loadHealth();
    }
  }

  // Server-sent events: "data: {chunk}\n\n" ... "data: [DONE]".
  async function readStream(r, answer) {
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        for (const line of ev.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") { answer.dataset.done = "1"; return; }
          const j = JSON.parse(data);
          if (j.error) throw new Error(j.error.message);
          const ch = j.choices && j.choices[0];
          if (ch && ch.delta && ch.delta.content) answer.textContent += ch.delta.content;
          if (j.t2) renderHow(j.t2, j.usage, j.timings);
        }
      }
    }
  }

  // ---- wiring ----
  const drop = $("drop");
  const unselectSamples = () => { for (const x of $("samples").children) x.classList.remove("sel"); };
  $("file").addEventListener("change", (e) => { if (e.target.files[0]) { unselectSamples(); useFile(e.target.files[0]); } });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); } });
  for (const t of ["dragenter", "dragover"])
    drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const t of ["dragleave", "drop"])
    drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  drop.addEventListener("drop", (e) => {
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) { unselectSamples(); useFile(f); }
  });
  $("clear-image").addEventListener("click", clearImage);
  $("ask-form").addEventListener("submit", ask);
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask-form").requestSubmit(); }
  });
  $("stop").addEventListener("click", () => { if (controller) controller.abort(); });
  loadModel();
  loadHealth();
  loadSamples();
})();
