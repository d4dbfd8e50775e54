// sonotell review: plain JS, no build step, nothing fetched from outside this server.
"use strict";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
const NUDGE_S = 0.1;
const PAGE = 1000;
const CLINICIAN = "clinician";

const S = { meta: null, scans: [], scan: null, events: [], words: [], sel: -1, undo: [], lastLabel: null, peaks: null, loadToken: 0 };
const $ = (id) => document.getElementById(id);

function colour(label) {
  const i = S.meta ? S.meta.labels.indexOf(label) : -1;
  return i < 0 ? "#555" : PALETTE[i % PALETTE.length];
}

function say(text, bad) {
  const el = $("status");
  el.textContent = text;
  el.className = "status" + (bad ? " bad" : " ok");
}

async function api(method, url, body) {
  const opt = { method, headers: {} };
  if (body !== undefined) {
    opt.headers["Content-Type"] = "application/json";
    opt.body = JSON.stringify(body);
  }
  const r = await fetch(url, opt);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) {
    const err = new Error((data && data.detail) || r.statusText);
    err.status = r.status;
    throw err;
  }
  return data;
}

// ---------------------------------------------------------------- scan list

async function loadList() {
  const data = await api("GET", "/api/scans");
  S.scans = data.scans;
  showProgress(data.progress);
  const tbody = document.querySelector("#scan-table tbody");
  tbody.textContent = "";
  for (const r of data.scans) {
    const tr = document.createElement("tr");
    tr.dataset.scan = r.scan_id;
    if (r.reviewed) tr.className = "done";
    const cells = [r.scan_id, r.subject_id, r.n_events, r.n_negated,
      r.min_confidence == null ? "" : r.min_confidence.toFixed(2), r.conflict ? "yes" : "", r.n_decisions,
      r.reviewed ? "✓ " + (r.reviewed_by || "") : ""];
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      if (i === 0) {
        const a = document.createElement("a");
        a.href = "#/scan/" + encodeURIComponent(r.scan_id);
        a.textContent = c;
        td.appendChild(a);
      } else td.textContent = c;
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  }
}

function showProgress(p) {
  $("progress").textContent = `reviewed ${p.reviewed} / ${p.total}`;
}

// ---------------------------------------------------------------- scan page

async function openScan(id) {
  const token = ++S.loadToken;
  const enc = encodeURIComponent(id);
  const meta = await api("GET", `/api/scans/${enc}`);
  if (token !== S.loadToken) return;
  S.scan = meta; S.events = []; S.words = []; S.sel = -1; S.undo = []; S.peaks = null;
  S.lastLabel = meta.labels[0];
  $("scan-title").textContent = `${meta.scan_id}` + (meta.subject_id ? ` · ${meta.subject_id}` : "");
  setReviewedButton(meta.reviewed);
  const video = $("video"), audio = $("audio");
  video.src = meta.video ? `/media/${enc}/video` : "";
  audio.src = meta.audio ? `/media/${enc}/audio` : "";
  renderLegend();
  // Events and words come in pages: the first page shows at once, the rest follow.
  for (let off = 0; ; off += PAGE) {
    const page = await api("GET", `/api/scans/${enc}/events?offset=${off}&limit=${PAGE}`);
    if (token !== S.loadToken) return;
    S.events.push(...page.events);
    if (off === 0 && S.events.length) S.sel = 0;
    renderEvents(); drawTimeline();
    if (off + PAGE >= page.total) break;
  }
  for (let off = 0; ; off += PAGE * 5) {
    const page = await api("GET", `/api/scans/${enc}/words?offset=${off}&limit=${PAGE * 5}`);
    if (token !== S.loadToken) return;
    S.words.push(...page.words);
    if (off + PAGE * 5 >= page.total) break;
  }
  renderTranscript();
  document.body.dataset.loaded = meta.scan_id;
  say(meta.orphans ? `${meta.orphans} reviewed event(s) no longer in the pipeline output (marked "orphan")` : "ready", false);
  api("GET", `/api/scans/${enc}/waveform?bins=4000`).then((w) => {
    if (token === S.loadToken) { S.peaks = w.peaks; drawWave(); }
  }).catch(() => {});
}

function setReviewedButton(done) {
  const b = $("mark-reviewed");
  b.textContent = done ? "✓ reviewed (m to reopen)" : "Mark scan reviewed (m)";
  b.classList.toggle("done", !!done);
}

function renderLegend() {
  const el = $("legend");
  el.textContent = "";
  S.scan.labels.forEach((lab, i) => {
    const s = document.createElement("span");
    s.className = "chip";
    s.style.borderColor = colour(lab);
    s.textContent = (i < 9 ? `${i + 1} ` : "") + lab;
    s.title = i < 9 ? `relabel the selected event (key ${i + 1})` : "";
    s.addEventListener("click", () => relabel(i));
    el.appendChild(s);
  });
}

function fmt(t) {
  const m = Math.floor(t / 60), s = t - 60 * m;
  return `${m}:${s.toFixed(2).padStart(5, "0")}`;
}

function renderEvents() {
  const box = $("events");
  box.textContent = "";
  $("event-count").textContent = `(${S.events.length})`;
  const frag = document.createDocumentFragment();
  S.events.forEach((e, i) => {
    const row = document.createElement("div");
    row.className = "ev " + e.status + (i === S.sel ? " sel" : "") + (e.negated ? " neg" : "") +
      (e.speaker && e.speaker !== CLINICIAN ? " other" : "") + (e.orphan ? " orphan" : "");
    row.dataset.id = e.id;
    row.dataset.status = e.status;
    row.dataset.label = e.label;
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = colour(e.label);
    row.appendChild(sw);
    const txt = document.createElement("span");
    txt.className = "evtext";
    txt.textContent = `${fmt(e.start_s)}–${fmt(e.end_s)}  ${e.negated ? "NOT " : ""}${e.label}` +
      (e.term && e.term !== e.label ? ` “${e.term}”` : "") + (e.status === "speech" ? `  ${(+e.confidence).toFixed(2)}` : "") +
      (e.speaker && e.speaker !== CLINICIAN ? `  (${e.speaker})` : "");
    row.appendChild(txt);
    const st = document.createElement("span");
    st.className = "badge";
    st.textContent = e.orphan ? `${e.status}, orphan` : e.status;
    row.appendChild(st);
    row.addEventListener("click", () => select(i, true));
    frag.appendChild(row);
  });
  box.appendChild(frag);
}

function select(i, seek) {
  if (i < 0 || i >= S.events.length) return;
  S.sel = i;
  for (const el of $("events").querySelectorAll(".ev.sel")) el.classList.remove("sel");
  const row = $("events").children[i];
  if (row) { row.classList.add("sel"); row.scrollIntoView({ block: "nearest" }); }
  if (seek) seekTo(Math.max(0, S.events[i].start_s - 0.3));
  drawTimeline();
}

function renderTranscript() {
  const box = $("transcript");
  box.textContent = "";
  const frag = document.createDocumentFragment();
  let speaker = null;
  S.words.forEach((w) => {
    if (w.speaker !== speaker) {
      speaker = w.speaker;
      const sp = document.createElement("span");
      sp.className = "speaker";
      sp.textContent = `${speaker || "?"}: `;
      frag.appendChild(sp);
    }
    const s = document.createElement("span");
    s.className = "word" + (w.speaker && w.speaker !== CLINICIAN ? " other" : "");
    s.textContent = w.text + " ";
    s.dataset.t = w.start_s;
    s.title = fmt(w.start_s);
    s.addEventListener("click", () => seekTo(w.start_s));
    frag.appendChild(s);
  });
  box.appendChild(frag);
}

// ---------------------------------------------------------------- player

function playhead() { return $("video").currentTime || 0; }

function seekTo(t) {
  const v = $("video");
  v.currentTime = Math.max(0, Math.min(t, S.scan ? S.scan.duration_s : t));
  syncAudio();
  drawTimeline(); drawWave();
}

function syncAudio() {
  const v = $("video"), a = $("audio");
  if (!S.scan || !S.scan.audio) return;
  const t = v.currentTime - S.scan.audio_offset_s;
  if (Math.abs(a.currentTime - t) > 0.05) a.currentTime = Math.max(0, t);
  if (v.paused !== a.paused) { if (v.paused) a.pause(); else a.play().catch(() => {}); }
}

function togglePlay() {
  const v = $("video");
  if (v.paused) v.play().catch(() => {}); else v.pause();
}

// The strips show a window of the scan: all of it when short, else 60 s around the play head.
function viewWindow() {
  const d = S.scan ? S.scan.duration_s : 1;
  if (d <= 90) return [0, d];
  const t = playhead(), half = 30;
  const a = Math.max(0, Math.min(t - half, d - 2 * half));
  return [a, a + 2 * half];
}

function sizeCanvas(c) {
  const w = c.clientWidth || 600;
  if (c.width !== w) c.width = w;
  return c.getContext("2d");
}

function drawWave() {
  const c = $("wave"), g = sizeCanvas(c);
  g.clearRect(0, 0, c.width, c.height);
  if (!S.scan) return;
  const [a, b] = viewWindow(), d = S.scan.duration_s;
  if (S.peaks) {
    const n = S.peaks.length, mid = c.height / 2;
    g.fillStyle = "#7a8aa0";
    for (let x = 0; x < c.width; x++) {
      const t = a + (x / c.width) * (b - a);
      const p = S.peaks[Math.min(n - 1, Math.floor((t / d) * n))] || 0;
      g.fillRect(x, mid - p * mid, 1, Math.max(1, 2 * p * mid));
    }
  }
  drawHead(g, c, a, b);
}

function drawTimeline() {
  const c = $("timeline"), g = sizeCanvas(c);
  g.clearRect(0, 0, c.width, c.height);
  if (!S.scan) return;
  const [a, b] = viewWindow();
  const X = (t) => ((t - a) / (b - a)) * c.width;
  S.events.forEach((e, i) => {
    if (e.end_s < a || e.start_s > b) return;
    const x0 = X(e.start_s), w = Math.max(3, X(e.end_s) - x0);
    const other = e.speaker && e.speaker !== CLINICIAN;
    const y = e.source === "reviewed" ? 8 : 30, h = 22;
    g.globalAlpha = e.status === "rejected" ? 0.25 : other ? 0.35 : 1;
    g.fillStyle = other ? "#999" : colour(e.label);
    g.fillRect(x0, y, w, h);
    if (e.negated) { // negated: hatched with a red outline
      g.strokeStyle = "#c00"; g.lineWidth = 2; g.strokeRect(x0, y, w, h);
      g.beginPath(); g.moveTo(x0, y + h); g.lineTo(x0 + w, y); g.stroke();
    }
    if (i === S.sel) { g.globalAlpha = 1; g.strokeStyle = "#000"; g.lineWidth = 3; g.strokeRect(x0 - 1, y - 2, w + 2, h + 4); }
    g.globalAlpha = 1;
  });
  g.fillStyle = "#333"; g.font = "10px sans-serif";
  g.fillText("reviewed", 2, 7); g.fillText("speech", 2, 62);
  // time ticks: about one every 80 px, at 1/2/5 x 10^k seconds
  const raw = ((b - a) * 80) / c.width, p10 = Math.pow(10, Math.floor(Math.log10(raw)));
  const tick = [1, 2, 5, 10].map((m) => m * p10).find((v) => v >= raw);
  g.fillStyle = "#777";
  for (let t = Math.ceil(a / tick) * tick; t <= b; t += tick) {
    const x = X(t);
    g.fillRect(x, c.height - 4, 1, 4);
    if (x > 40 && x < c.width - 30) g.fillText(fmt(t).replace(/\.00$/, ""), x + 2, c.height - 2);
  }
  drawHead(g, c, a, b);
}

function drawHead(g, c, a, b) {
  const x = ((playhead() - a) / (b - a)) * c.width;
  g.strokeStyle = "#000"; g.lineWidth = 1;
  g.beginPath(); g.moveTo(x, 0); g.lineTo(x, c.height); g.stroke();
}

function timelineClick(ev) {
  const c = $("timeline"), [a, b] = viewWindow();
  const t = a + (ev.offsetX / c.clientWidth) * (b - a);
  let best = -1, bestD = 0.5 * (b - a) / 50 + 0.05;
  S.events.forEach((e, i) => {
    const d = t < e.start_s ? e.start_s - t : t > e.end_s ? t - e.end_s : 0;
    if (d <= bestD) { best = i; bestD = d; }
  });
  if (best >= 0) select(best, false);
  seekTo(t);
}

// ---------------------------------------------------------------- changes

function current() { return S.sel >= 0 ? S.events[S.sel] : null; }

function snapshot(e) {
  return { status: e.status, label: e.label, start_s: e.start_s, end_s: e.end_s, negated: e.negated };
}

function applyResult(i, res) {
  const e = S.events[i];
  Object.assign(e, { status: res.status, label: res.label, start_s: res.start_s, end_s: res.end_s,
    negated: res.negated, rev: res.rev, by: res.by, source: res.status === "speech" ? "speech" : "reviewed" });
  renderEvents(); select(i, false);
}

async function change(body, undoable = true) {
  const e = current();
  if (!e) { say("no event selected", true); return; }
  const i = S.sel, before = snapshot(e);
  const url = `/api/scans/${encodeURIComponent(S.scan.scan_id)}/events/${encodeURIComponent(e.id)}`;
  try {
    const res = await api("PUT", url, { ...body, rev: e.rev || 0 });
    if (undoable) S.undo.push({ id: e.id, before });
    applyResult(i, res);
    if (body.label) S.lastLabel = body.label;
    say(`saved: ${res.status} ${res.label}`, false);
  } catch (err) { failed(err); }
}

async function failed(err) {
  say(`not saved: ${err.message}`, true);
  if (err.status === 409) await openScan(S.scan.scan_id);
}

function accept() { change({ status: "accepted" }); }
function reject() { change({ status: "rejected" }); }
function relabel(k) {
  if (!S.scan || k >= S.scan.labels.length) return;
  const e = current();
  change({ status: e && e.status === "added" ? "added" : "edited", label: S.scan.labels[k] });
}
function negate() { const e = current(); if (e) change({ status: e.status === "added" ? "added" : "edited", negated: !e.negated }); }
function nudge(which, d) {
  const e = current();
  if (!e) return;
  const dur = S.scan.duration_s;
  let s = e.start_s, t = e.end_s;
  if (which === "start") s = Math.min(Math.max(0, +(s + d).toFixed(3)), t);
  else t = Math.max(Math.min(dur, +(t + d).toFixed(3)), s);
  change({ status: e.status === "added" ? "added" : "edited", start_s: s, end_s: t });
}

async function addEvent() {
  const t = playhead(), dur = S.scan.duration_s;
  const body = { label: S.lastLabel || S.scan.labels[0], start_s: +Math.min(t, dur).toFixed(3), end_s: +Math.min(t + 1.0, dur).toFixed(3), negated: false };
  try {
    const res = await api("POST", `/api/scans/${encodeURIComponent(S.scan.scan_id)}/events`, body);
    const ev = { ...res, term: res.label, confidence: 1, source: "reviewed", base: null };
    let i = S.events.findIndex((e) => e.start_s > ev.start_s);
    if (i < 0) i = S.events.length;
    S.events.splice(i, 0, ev);
    S.undo.push({ id: ev.id, before: null });
    renderEvents(); select(i, false);
    say(`added ${ev.label} at ${fmt(ev.start_s)} (1–9 to relabel)`, false);
  } catch (err) { failed(err); }
}

async function undo() {
  const step = S.undo.pop();
  if (!step) { say("nothing to undo", true); return; }
  const i = S.events.findIndex((e) => e.id === step.id);
  if (i < 0) return;
  const e = S.events[i];
  const url = `/api/scans/${encodeURIComponent(S.scan.scan_id)}/events/${encodeURIComponent(e.id)}`;
  try {
    if (step.before === null || step.before.status === "speech") {
      await api("DELETE", `${url}?rev=${e.rev || 0}`);
      if (step.before === null) { S.events.splice(i, 1); S.sel = Math.min(i, S.events.length - 1); renderEvents(); drawTimeline(); }
      else {
        const b = e.base || step.before;
        applyResult(i, { status: "speech", label: b.label, start_s: b.start_s, end_s: b.end_s, negated: !!b.negated, rev: 0, by: null });
      }
    } else {
      const res = await api("PUT", url, { ...step.before, rev: e.rev || 0 });
      applyResult(i, res);
    }
    say("undone", false);
  } catch (err) { failed(err); }
}

async function toggleReviewed() {
  const done = !S.scan.reviewed;
  try {
    await api("PUT", `/api/scans/${encodeURIComponent(S.scan.scan_id)}/reviewed`, { reviewed: done });
    S.scan.reviewed = done;
    setReviewedButton(done);
    const data = await api("GET", "/api/scans");
    S.scans = data.scans;
    showProgress(data.progress);
    say(done ? "scan marked reviewed" : "scan reopened", false);
  } catch (err) { failed(err); }
}

function step(d) {
  if (!S.events.length) return;
  if (S.sel < 0) { select(0, true); return; }
  select(Math.max(0, Math.min(S.events.length - 1, S.sel + d)), true);
}

function otherScan(d) {
  if (!S.scans.length || !S.scan) return;
  const i = S.scans.findIndex((r) => r.scan_id === S.scan.scan_id);
  const j = i + d;
  if (j >= 0 && j < S.scans.length) location.hash = "#/scan/" + encodeURIComponent(S.scans[j].scan_id);
}

function onKey(ev) {
  if ($("scan-view").hidden || ev.ctrlKey && ev.key !== "z" || ev.metaKey || ev.altKey) return;
  const tag = (ev.target.tagName || "").toLowerCase();
  if (tag === "input" || tag === "textarea" || tag === "select") return;
  const k = ev.key;
  const acts = {
    " ": togglePlay, j: () => step(1), k: () => step(-1), ArrowDown: () => step(1), ArrowUp: () => step(-1),
    a: accept, x: reject, Delete: reject, n: negate, e: addEvent, u: undo, z: ev.ctrlKey ? undo : null, m: toggleReviewed,
    "[": () => nudge("start", -NUDGE_S), "]": () => nudge("start", NUDGE_S),
    "{": () => nudge("end", -NUDGE_S), "}": () => nudge("end", NUDGE_S),
  };
  let fn = acts[k];
  if (!fn && /^[1-9]$/.test(k)) fn = () => relabel(Number(k) - 1);
  if (!fn) return;
  ev.preventDefault();
  fn();
}

// ---------------------------------------------------------------- routing

async function route() {
  const m = location.hash.match(/^#\/scan\/(.+)$/);
  try {
    if (!S.meta) {
      S.meta = await api("GET", "/api/meta");
      $("folder").textContent = S.meta.folder + " · " + S.meta.reviewer;
    }
    if (m) {
      $("list-view").hidden = true; $("scan-view").hidden = false;
      if (!S.scans.length) { const data = await api("GET", "/api/scans"); S.scans = data.scans; showProgress(data.progress); }
      await openScan(decodeURIComponent(m[1]));
    } else {
      $("scan-view").hidden = true; $("list-view").hidden = false;
      $("video").pause();
      await loadList();
      document.body.dataset.loaded = "list";
    }
  } catch (err) { say(err.message, true); }
}

function init() {
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", route);
  window.addEventListener("resize", () => { drawTimeline(); drawWave(); });
  $("timeline").addEventListener("click", timelineClick);
  $("mark-reviewed").addEventListener("click", toggleReviewed);
  $("prev-scan").addEventListener("click", () => otherScan(-1));
  $("next-scan").addEventListener("click", () => otherScan(1));
  for (const b of document.querySelectorAll("[data-act]")) {
    const f = { accept, reject, negate, add: addEvent, undo }[b.dataset.act];
    b.addEventListener("click", () => { f(); b.blur(); });
  }
  const v = $("video");
  for (const name of ["play", "pause", "seeked", "ratechange"]) v.addEventListener(name, syncAudio);
  v.addEventListener("timeupdate", () => { drawTimeline(); drawWave(); highlightWord(); });
  route();
}

let lastWord = null;
function highlightWord() {
  const t = playhead();
  const box = $("transcript");
  let best = null;
  for (const s of box.querySelectorAll(".word")) { if (+s.dataset.t <= t) best = s; else break; }
  if (best === lastWord) return;
  if (lastWord) lastWord.classList.remove("now");
  if (best) best.classList.add("now");
  lastWord = best;
}

init();
