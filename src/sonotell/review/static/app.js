// sonotell review: plain JS, no build step, nothing fetched from outside this server.
"use strict";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
const NUDGE_S = 0.1;
const MIN_EVENT_S = 0.05; // an event must cover time: a zero-length one labels no frame
const PAGE = 1000;
const CLINICIAN = "clinician";
const RATES = [0.5, 0.75, 1, 1.25, 1.5, 2];
const LANE_H = 14, MAX_LANES = 8;

const S = {
  meta: null, scans: [], progress: null, scan: null, events: [], words: [], sel: -1, order: [], rows: new Map(),
  lanes: [], nLanes: 1, lastLabel: null, peaks: null, loadToken: 0, media: "none", view: null, loop: false,
  rate: 1, failedAction: null, undoScan: null, redrawMs: [],
};
window.__review = S; // for tests and benchmarks (redraw times per change: S.redrawMs)
const $ = (id) => document.getElementById(id);
const enc = (s) => encodeURIComponent(s);

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
  let r;
  try { r = await fetch(url, opt); } catch (e) {
    const err = new Error("the server is not reachable (stopped?)");
    err.status = 0;
    throw err;
  }
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) {
    const err = new Error((data && data.detail) || r.statusText);
    err.status = r.status;
    throw err;
  }
  return data;
}

// ---------------------------------------------------------------- saving: nothing lost silently

// Every change runs through save(): on failure a banner stays up (it is not overwritten by later messages)
// and names what was not saved; Retry runs the same change again (after a 409: on the reloaded scan).
// Changes run one after another, each on the event as the previous one left it (keys pressed faster than the
// server answers would otherwise send a stale rev and meet a 409).
let saving = Promise.resolve();
function save(what, action) {
  const run = saving.then(async () => {
    try {
      await action();
      if (S.failedAction) hideBanner();
      return true;
    } catch (err) {
      showFailure(what, err, action);
      return false;
    }
  });
  saving = run;
  return run;
}

function showFailure(what, err, action) {
  let text = `Not saved: ${what}. `;
  if (err.status === 409) text += "Someone changed this in another tab or window; Retry reloads the scan and applies your change to it.";
  else if (err.status === 0) text += "The server is not reachable (stopped?). Start `sonotell review serve` again, then Retry.";
  else text += err.message;
  S.failedAction = err.status === 409 || err.status === 0 || err.status >= 500
    ? async () => { if (err.status === 409) await reloadScan(); await action(); }
    : null;
  $("banner-text").textContent = text;
  $("banner-retry").hidden = !S.failedAction;
  $("banner").hidden = false;
  say("not saved", true);
}

function hideBanner() { $("banner").hidden = true; S.failedAction = null; }

async function retryFailed() {
  const act = S.failedAction;
  if (!act) return;
  try { await act(); hideBanner(); say("saved", false); } catch (err) { showFailure("the retried change", err, act); }
}

// ---------------------------------------------------------------- scan list and queue

async function refreshScans() {
  const data = await api("GET", "/api/scans");
  S.scans = data.scans;
  S.progress = data.progress;
  showProgress();
  return data;
}

// The scan list's filters; the next unreviewed scan is taken from the scans they show.
function scanShown(r) {
  const st = $("s-status").value, lab = $("s-label").value, sp = $("s-speaker").value;
  const conf = parseFloat($("s-conf").value);
  if (st === "open" && r.reviewed) return false;
  if (st === "done" && !r.reviewed) return false;
  if (lab && !(r.labels || []).includes(lab)) return false;
  if (sp && !(r.speakers || []).includes(sp)) return false;
  if (!isNaN(conf) && conf < 1 && !(r.min_confidence != null && r.min_confidence <= conf)) return false;
  return true;
}

function fillListFilters() {
  const fill = (id, values) => {
    const sel = $(id), keep = sel.value;
    while (sel.options.length > 1) sel.remove(1);
    for (const v of values) { const o = document.createElement("option"); o.value = v; o.textContent = v || "(none)"; sel.appendChild(o); }
    sel.value = values.includes(keep) ? keep : "";
  };
  fill("s-label", [...new Set(S.scans.flatMap((r) => r.labels || []))].sort());
  fill("s-speaker", [...new Set(S.scans.flatMap((r) => r.speakers || []))].sort());
}

async function loadList() {
  await refreshScans();
  fillListFilters();
  renderList();
}

function renderList() {
  const tbody = document.querySelector("#scan-table tbody");
  tbody.textContent = "";
  const shown = S.scans.filter(scanShown);
  $("scan-count").textContent = shown.length === S.scans.length ? "" : `${shown.length} of ${S.scans.length} scans shown`;
  for (const r of shown) {
    const tr = document.createElement("tr");
    tr.dataset.scan = r.scan_id;
    if (r.reviewed) tr.className = "done";
    const cells = [r.scan_id, r.subject_id, r.n_events, `${r.n_decided}/${r.n_listed}`, r.n_negated,
      r.min_confidence == null ? "" : r.min_confidence.toFixed(2), r.conflict ? "yes" : "",
      r.reviewed ? "✓ " + (r.reviewed_by || "") : ""];
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      if (i === 0) {
        const a = document.createElement("a");
        a.href = "#/scan/" + enc(r.scan_id);
        a.textContent = c;
        td.appendChild(a);
      } else td.textContent = c;
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  }
}

function showProgress() {
  const p = S.progress;
  if (!p) return;
  $("progress").textContent = `reviewed ${p.reviewed} / ${p.total} scans · ${p.events_decided} / ${p.events_total} events decided`;
}

// The next scan not marked reviewed after the current one in the list's order (wrapping), or null.
function nextUnreviewed() {
  const cur = S.scan ? S.scans.findIndex((r) => r.scan_id === S.scan.scan_id) : -1;
  for (let k = 1; k <= S.scans.length; k++) {
    const r = S.scans[(cur + k + S.scans.length) % S.scans.length];
    if (!r.reviewed && scanShown(r) && (!S.scan || r.scan_id !== S.scan.scan_id)) return r.scan_id;
  }
  return null;
}

function goScan(id) { location.hash = "#/scan/" + enc(id); }

function openNextUnreviewed() {
  const id = nextUnreviewed();
  if (id) goScan(id); else { say("every scan is marked reviewed", false); location.hash = "#/"; }
}

function previousScan() {
  if (!S.scans.length || !S.scan) return;
  const i = S.scans.findIndex((r) => r.scan_id === S.scan.scan_id);
  if (i > 0) goScan(S.scans[i - 1].scan_id);
}

// ---------------------------------------------------------------- scan page

async function openScan(id, keepSel) {
  const token = ++S.loadToken;
  const meta = await api("GET", `/api/scans/${enc(id)}`);
  if (token !== S.loadToken) return;
  const sameScan = S.scan && S.scan.scan_id === meta.scan_id;
  const selId = keepSel && current() ? current().id : null;
  S.scan = meta; S.events = []; S.words = []; S.sel = -1; S.peaks = null; S.loop = false;
  if (!sameScan) { S.view = null; S.lastLabel = meta.labels[0]; }
  $("scan-title").textContent = `${meta.scan_id}` + (meta.subject_id ? ` · ${meta.subject_id}` : "");
  setReviewedButton(meta.reviewed);
  if (!sameScan || !keepSel) setupMedia(meta, token);
  renderLegend();
  // Events and words come in pages: the first page shows at once, the rest follow.
  for (let off = 0; ; off += PAGE) {
    const page = await api("GET", `/api/scans/${enc(meta.scan_id)}/events?offset=${off}&limit=${PAGE}`);
    if (token !== S.loadToken) return;
    S.events.push(...page.events);
    if (off + PAGE >= page.total) break;
  }
  fillFilters();
  computeLanes();
  renderEvents();
  const keep = selId ? S.events.findIndex((e) => e.id === selId) : -1;
  if (keep >= 0) select(keep, false);
  else if (S.order.length) select(S.order[0], false);
  drawTimeline();
  for (let off = 0; ; off += PAGE * 5) {
    const page = await api("GET", `/api/scans/${enc(meta.scan_id)}/words?offset=${off}&limit=${PAGE * 5}`);
    if (token !== S.loadToken) return;
    S.words.push(...page.words);
    if (off + PAGE * 5 >= page.total) break;
  }
  renderTranscript();
  document.body.dataset.loaded = meta.scan_id;
  showScanProgress();
  if (!$("banner").hidden && !S.failedAction) hideBanner();
  say(meta.orphans ? `${meta.orphans} reviewed event(s) no longer in the pipeline output (marked "orphan")` : "ready", false);
  api("GET", `/api/scans/${enc(meta.scan_id)}/waveform?bins=4000`).then((w) => {
    if (token === S.loadToken) { S.peaks = w.peaks; drawWave(); }
  }).catch(() => {});
}

function reloadScan() { return openScan(S.scan.scan_id, true); }

function setReviewedButton(done) {
  const b = $("mark-reviewed");
  b.textContent = done ? "✓ reviewed (m to reopen)" : "Mark scan reviewed (m)";
  b.classList.toggle("done", !!done);
}

function showScanProgress() {
  const decided = S.events.filter((e) => e.status !== "speech").length;
  $("scan-progress").textContent = `${decided} / ${S.events.length} events decided`;
}

function renderLegend() {
  const el = $("legend");
  el.textContent = "";
  S.scan.labels.forEach((lab, i) => {
    const s = document.createElement("button");
    s.type = "button";
    s.className = "chip";
    s.style.borderLeftColor = colour(lab);
    s.textContent = (i < 9 ? `${i + 1} ` : "") + lab;
    s.title = i < 9 ? `relabel the selected event (key ${i + 1})` : "relabel the selected event";
    s.addEventListener("click", () => { relabel(i); s.blur(); });
    el.appendChild(s);
  });
}

function fmt(t) {
  const m = Math.floor(t / 60), s = t - 60 * m;
  return `${m}:${s.toFixed(2).padStart(5, "0")}`;
}

// ---------------------------------------------------------------- event list: filters, order, rows

function fillFilters() {
  const fill = (id, values, show) => {
    const sel = $(id), keep = sel.value;
    while (sel.options.length > 1) sel.remove(1);
    for (const v of values) { const o = document.createElement("option"); o.value = v; o.textContent = show(v); sel.appendChild(o); }
    sel.value = values.includes(keep) ? keep : "";
  };
  fill("f-label", [...new Set(S.events.map((e) => e.label))].sort(), (v) => v);
  fill("f-speaker", [...new Set(S.events.map((e) => e.speaker || ""))].sort(), (v) => v || "(none)");
}

function visible(e) {
  const lab = $("f-label").value, st = $("f-status").value, sp = $("f-speaker").value;
  const conf = parseFloat($("f-conf").value);
  if (lab && e.label !== lab) return false;
  if (st && e.status !== st) return false;
  if (sp && (e.speaker || "") !== sp) return false;
  if (!isNaN(conf) && conf < 1 && (e.status !== "speech" || +e.confidence > conf)) return false;
  return true;
}

function computeOrder() {
  const idx = [];
  S.events.forEach((e, i) => { if (visible(e)) idx.push(i); });
  if ($("f-order").value === "confidence") {
    idx.sort((i, j) => (S.events[i].status === "speech" ? +S.events[i].confidence : 2) -
      (S.events[j].status === "speech" ? +S.events[j].confidence : 2) || i - j);
  }
  S.order = idx;
}

function rowText(e) {
  // the quote is what was said, shown when it differs from the label; an added event has no words of its own
  const said = e.status !== "added" && e.term && e.term !== e.label ? ` “${e.term}”` : "";
  return `${fmt(e.start_s)}–${fmt(e.end_s)}  ${e.negated ? "NOT " : ""}${e.label}${said}` +
    (e.status === "speech" ? `  ${(+e.confidence).toFixed(2)}` : "") +
    (e.speaker && e.speaker !== CLINICIAN ? `  (${e.speaker})` : "");
}

function fillRow(row, e, i) {
  row.className = "ev " + e.status + (i === S.sel ? " sel" : "") + (e.negated ? " neg" : "") +
    (e.speaker && e.speaker !== CLINICIAN ? " other" : "") + (e.orphan ? " orphan" : "");
  row.dataset.id = e.id;
  row.dataset.status = e.status;
  row.dataset.label = e.label;
  row.setAttribute("aria-selected", i === S.sel ? "true" : "false");
  row.tabIndex = i === S.sel ? 0 : -1;
  row.children[0].style.background = colour(e.label);
  row.children[1].textContent = rowText(e);
  row.children[2].textContent = e.orphan ? `${e.status}, orphan` : (e.status === "speech" ? "undecided" : e.status);
}

function makeRow(i) {
  const row = document.createElement("div");
  row.setAttribute("role", "option");
  for (const cls of ["swatch", "evtext", "badge"]) {
    const s = document.createElement("span");
    s.className = cls;
    row.appendChild(s);
  }
  row.addEventListener("click", () => select(+row.dataset.index, true));
  row.addEventListener("focus", () => { if (+row.dataset.index !== S.sel) select(+row.dataset.index, false); });
  row.dataset.index = i;
  return row;
}

// Rebuilds the whole list: on load and when a filter changes. A change to one event updates one row (updateRow).
function renderEvents() {
  computeOrder();
  const box = $("events");
  box.textContent = "";
  S.rows = new Map();
  const frag = document.createDocumentFragment();
  for (const i of S.order) {
    const row = makeRow(i);
    fillRow(row, S.events[i], i);
    S.rows.set(i, row);
    frag.appendChild(row);
  }
  box.appendChild(frag);
  $("event-count").textContent = S.order.length === S.events.length ? `(${S.events.length})` : `(${S.order.length} of ${S.events.length})`;
}

function updateRow(i) {
  const row = S.rows.get(i);
  if (row) fillRow(row, S.events[i], i);
}

function select(i, seek) {
  if (i < 0 || i >= S.events.length) return;
  const old = S.sel;
  S.sel = i;
  if (old !== i && S.rows.has(old)) updateRow(old);
  const row = S.rows.get(i);
  if (row) {
    updateRow(i);
    row.scrollIntoView({ block: "nearest" });
    // keyboard focus follows the selection when it is in the list already (Tab reaches the selected row)
    if (document.activeElement && document.activeElement.closest && document.activeElement.closest("#events")) row.focus({ preventScroll: true });
  }
  const e = S.events[i];
  $("announce").textContent = `event ${S.order.indexOf(i) + 1} of ${S.order.length}: ${e.negated ? "not " : ""}${e.label}, ` +
    `${fmt(e.start_s)} to ${fmt(e.end_s)}, ${e.status === "speech" ? "undecided, confidence " + (+e.confidence).toFixed(2) : e.status}`;
  if (seek) seekTo(Math.max(0, e.start_s - 0.3));
  if (S.loop) showLoop();
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
  lastWord = null;
}

// ---------------------------------------------------------------- player: one clock

// S.media says what plays: "preview" (the browser copy: video with the narration inside, one element),
// "original" (the scan's own video, its separate narration kept in sync), "audio" (the video cannot be
// played: the narration alone drives the clock) or "none".
function setupMedia(meta, token) {
  const v = $("video"), a = $("audio");
  v.pause(); a.pause();
  v.removeAttribute("src"); a.removeAttribute("src");
  v.playbackRate = a.playbackRate = S.rate;
  note("");
  if (meta.preview) { usePreview(meta.scan_id, 0, false); return; }
  if (meta.audio) a.src = `/media/${enc(meta.scan_id)}/audio`;
  if (meta.video || meta.video_file) {
    S.media = "original";
    v.src = `/media/${enc(meta.scan_id)}/video`;
    v.load();
    buildPreview(meta, token);
  } else {
    S.media = meta.audio ? "audio" : "none";
    note(meta.audio ? "This scan has no video file; the narration plays alone." : "This scan has neither video nor narration.");
  }
  if (meta.audio) a.load();
}

function buildPreview(meta, token) {
  api("POST", `/api/scans/${enc(meta.scan_id)}/preview`, {}).then(() => {
    if (token !== S.loadToken) return;
    usePreview(meta.scan_id, playhead(), !clockEl().paused);
  }).catch((err) => {
    if (token !== S.loadToken) return;
    if (S.media === "audio") note(`This video cannot be played in the browser and no playable copy could be made (${err.message}); the narration plays alone.`);
  });
}

function usePreview(id, t, playing) {
  const v = $("video"), a = $("audio");
  a.pause();
  S.media = "preview";
  v.src = `/media/${enc(id)}/preview`;
  v.playbackRate = S.rate;
  v.addEventListener("loadedmetadata", () => {
    v.playbackRate = S.rate;
    if (t > 0) v.currentTime = t;
    if (playing) v.play().catch(() => {});
  }, { once: true });
  v.load();
  v.dataset.source = "preview";
  note("");
}

function videoFailed() {
  const v = $("video");
  if (S.media !== "original" || !v.error) return;
  S.media = S.scan.audio ? "audio" : "none";
  v.dataset.source = "failed";
  note("This video cannot be played in the browser (its codec); making a playable copy" +
    (S.scan.audio ? " — meanwhile the narration plays alone (space)." : "."));
}

function note(text) {
  const el = $("media-note");
  el.textContent = text;
  el.hidden = !text;
}

function clockEl() { return S.media === "audio" ? $("audio") : $("video"); }

function playhead() {
  if (S.media === "audio") return $("audio").currentTime + (S.scan ? S.scan.audio_offset_s : 0);
  return $("video").currentTime || 0;
}

function seekTo(t) {
  t = Math.max(0, Math.min(t, S.scan ? S.scan.duration_s : t));
  if (S.media === "audio") $("audio").currentTime = Math.max(0, t - S.scan.audio_offset_s);
  else $("video").currentTime = t;
  syncAudio();
  follow();
  drawTimeline(); drawWave();
}

// Only with the original video and a separate narration file: the narration follows the video's clock,
// rate, mute and volume. The preview needs none of this (one element).
function syncAudio() {
  const v = $("video"), a = $("audio");
  if (S.media !== "original" || !S.scan || !S.scan.audio) return;
  if (a.playbackRate !== v.playbackRate) a.playbackRate = v.playbackRate;
  a.muted = v.muted; a.volume = v.volume;
  const t = v.currentTime - S.scan.audio_offset_s;
  if (Math.abs(a.currentTime - t) > 0.08) a.currentTime = Math.max(0, t);
  if (v.paused !== a.paused) { if (v.paused) a.pause(); else a.play().catch(() => {}); }
}

function togglePlay() {
  const el = clockEl();
  if (S.media === "none") { say("nothing to play", true); return; }
  if (el.paused) el.play().catch((e) => say(`cannot play: ${e.message}`, true)); else el.pause();
}

function setRate(d) {
  const i = Math.max(0, Math.min(RATES.length - 1, RATES.indexOf(S.rate) + d));
  S.rate = RATES[i];
  $("video").playbackRate = S.rate;
  $("audio").playbackRate = S.rate;
  $("rate").textContent = `${S.rate}×`;
  say(`speed ${S.rate}×`, false);
}

function toggleLoop() {
  S.loop = !S.loop;
  showLoop();
  const e = current();
  if (S.loop && e) { seekTo(e.start_s); if (clockEl().paused) togglePlay(); }
}

function showLoop() {
  const e = current();
  $("loop-state").textContent = S.loop && e ? `loop ${fmt(e.start_s)}–${fmt(e.end_s)}` : "";
  document.querySelector("[data-act=loop]").classList.toggle("on", S.loop);
}

// While playing: redraw the strips each frame, keep a looped event looping, keep the play head in view.
function tick() {
  const el = clockEl();
  if (S.scan && !el.paused) {
    const e = current();
    if (S.loop && e && playhead() >= e.end_s) seekTo(e.start_s);
    syncAudio();
    follow();
    drawTimeline(); drawWave(); highlightWord();
  }
  requestAnimationFrame(tick);
}

// ---------------------------------------------------------------- strips: zoom, drag, seek, lanes

function viewWindow() {
  const d = S.scan ? S.scan.duration_s : 1;
  if (S.view) return S.view;
  if (d <= 90) return [0, d];
  const t = playhead(), half = 30;
  const a = Math.max(0, Math.min(t - half, d - 2 * half));
  return [a, a + 2 * half];
}

function follow() { // a zoomed view pages along with the play head
  if (!S.view) return;
  const [a, b] = S.view, t = playhead(), w = b - a, d = S.scan.duration_s;
  if (t < a || t > b) {
    const na = Math.max(0, Math.min(t - 0.1 * w, d - w));
    S.view = [na, na + w];
  }
}

function zoom(factor, at) {
  const d = S.scan.duration_s, [a, b] = viewWindow();
  const w = Math.max(0.5, Math.min(d, (b - a) * factor));
  let na = at - ((at - a) / (b - a)) * w;
  na = Math.max(0, Math.min(na, d - w));
  S.view = w >= d ? null : [na, na + w];
  $("zoom-state").textContent = S.view ? `showing ${fmt(S.view[0])}–${fmt(S.view[1])} (0: fit)` : "";
  drawTimeline(); drawWave();
}

function timeAt(c, x) { const [a, b] = viewWindow(); return a + (x / c.clientWidth) * (b - a); }

function attachStrip(c, onClick) {
  let drag = null;
  c.addEventListener("wheel", (ev) => { ev.preventDefault(); zoom(ev.deltaY > 0 ? 1.25 : 0.8, timeAt(c, ev.offsetX)); }, { passive: false });
  c.addEventListener("mousedown", (ev) => { drag = { x: ev.clientX, view: viewWindow(), moved: false }; });
  window.addEventListener("mousemove", (ev) => {
    if (!drag) return;
    const dx = ev.clientX - drag.x;
    if (Math.abs(dx) > 4) drag.moved = true;
    if (!drag.moved) return;
    const [a, b] = drag.view, d = S.scan.duration_s, w = b - a;
    const na = Math.max(0, Math.min(d - w, a - (dx / c.clientWidth) * w));
    S.view = w >= d ? null : [na, na + w];
    drawTimeline(); drawWave();
  });
  window.addEventListener("mouseup", (ev) => {
    if (!drag) return;
    const moved = drag.moved;
    drag = null;
    if (!moved && ev.target === c) onClick(ev);
  });
}

function sizeCanvas(c, height) {
  const w = c.clientWidth || 600;
  if (c.width !== w) c.width = w;
  if (height && c.height !== height) c.height = height;
  return c.getContext("2d");
}

function drawWave() {
  const c = $("wave"), g = sizeCanvas(c);
  g.clearRect(0, 0, c.width, c.height);
  if (!S.scan) return;
  const [a, b] = viewWindow(), d = S.scan.duration_s;
  if (S.peaks) {
    const n = S.peaks.length, mid = c.height / 2;
    g.fillStyle = "#5a6b82";
    for (let x = 0; x < c.width; x++) {
      const t0 = a + (x / c.width) * (b - a), t1 = a + ((x + 1) / c.width) * (b - a);
      let p = 0; // the loudest bin under this pixel (zoomed out) or the bin itself (zoomed in)
      for (let k = Math.floor((t0 / d) * n), e = Math.max(k + 1, Math.floor((t1 / d) * n)); k < e && k < n; k++) p = Math.max(p, S.peaks[k] || 0);
      g.fillRect(x, mid - p * mid, 1, Math.max(1, 2 * p * mid));
    }
  }
  drawHead(g, c, a, b);
}

// Overlapping events go to stacked lanes (the first lane free at the event's start).
function computeLanes() {
  const idx = S.events.map((_, i) => i).sort((i, j) => S.events[i].start_s - S.events[j].start_s || i - j);
  const ends = [];
  S.lanes = new Array(S.events.length).fill(0);
  for (const i of idx) {
    const e = S.events[i];
    let lane = ends.findIndex((end) => end <= e.start_s);
    if (lane < 0) { lane = Math.min(ends.length, MAX_LANES - 1); }
    ends[lane] = Math.max(ends[lane] || 0, e.end_s);
    S.lanes[i] = lane;
  }
  S.nLanes = Math.max(1, Math.min(MAX_LANES, ends.length));
}

function drawTimeline() {
  const c = $("timeline");
  const g = sizeCanvas(c, 22 + S.nLanes * (LANE_H + 2));
  g.clearRect(0, 0, c.width, c.height);
  if (!S.scan) return;
  const [a, b] = viewWindow();
  const X = (t) => ((t - a) / (b - a)) * c.width;
  for (let i = 0; i < S.events.length; i++) {
    const e = S.events[i];
    if (e.end_s < a || e.start_s > b) continue;
    const x0 = X(e.start_s), w = Math.max(3, X(e.end_s) - x0);
    const other = e.speaker && e.speaker !== CLINICIAN;
    const y = 4 + S.lanes[i] * (LANE_H + 2), h = LANE_H;
    g.globalAlpha = e.status === "rejected" ? 0.25 : other ? 0.35 : 1;
    g.fillStyle = other ? "#999" : colour(e.label);
    g.fillRect(x0, y, w, h);
    if (e.source === "reviewed" && e.status !== "rejected") { g.fillStyle = "#000"; g.fillRect(x0, y + h - 3, w, 3); } // decided
    if (e.negated) { // negated: hatched with a red outline
      g.strokeStyle = "#c00"; g.lineWidth = 2; g.strokeRect(x0, y, w, h);
      g.beginPath(); g.moveTo(x0, y + h); g.lineTo(x0 + w, y); g.stroke();
    }
    if (i === S.sel) { g.globalAlpha = 1; g.strokeStyle = "#000"; g.lineWidth = 3; g.strokeRect(x0 - 1, y - 2, w + 2, h + 4); }
    g.globalAlpha = 1;
  }
  // time ticks: about one every 80 px, at 1/2/5 x 10^k seconds
  const raw = ((b - a) * 80) / c.width, p10 = Math.pow(10, Math.floor(Math.log10(raw)));
  const tick = [1, 2, 5, 10].map((m) => m * p10).find((v) => v >= raw);
  g.fillStyle = "#4a4f57"; g.font = "10px sans-serif";
  for (let t = Math.ceil(a / tick) * tick; t <= b; t += tick) {
    const x = X(t);
    g.fillRect(x, c.height - 4, 1, 4);
    if (x > 10 && x < c.width - 30) g.fillText(fmt(t).replace(/\.00$/, ""), x + 2, c.height - 2);
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
  const t = timeAt(c, ev.offsetX);
  const lane = Math.floor((ev.offsetY - 4) / (LANE_H + 2));
  let best = -1, bestD = 0.5 * (b - a) / 50 + 0.05;
  S.events.forEach((e, i) => {
    if (S.lanes[i] !== lane) return;
    const d = t < e.start_s ? e.start_s - t : t > e.end_s ? t - e.end_s : 0;
    if (d <= bestD) { best = i; bestD = d; }
  });
  if (best >= 0) select(best, false);
  seekTo(t);
}

function waveClick(ev) { seekTo(timeAt($("wave"), ev.offsetX)); }

// ---------------------------------------------------------------- changes

function current() { return S.sel >= 0 ? S.events[S.sel] : null; }

function eventUrl(id) { return `/api/scans/${enc(S.scan.scan_id)}/events/${enc(id)}`; }

// After a saved change: one row, the lanes and the timeline; the time it takes is kept (benchmarks/bench_review.py).
function redrawChanged(i, timesChanged) {
  const t0 = performance.now();
  if (timesChanged) computeLanes();
  if (!visible(S.events[i]) || !S.rows.has(i)) renderEvents(); else updateRow(i);
  // the selection stays where the reviewer is now: keys pressed while this change was saved may have moved it
  drawTimeline();
  showScanProgress();
  void document.body.offsetHeight; // the style and layout the change needs happen here, inside the measured time
  S.redrawMs.push(performance.now() - t0);
}

// The header's folder progress follows each saved change (the server's count comes with the next list).
function countDecided(wasDecided, isDecided, added) {
  if (!S.progress) return;
  S.progress.events_decided += (isDecided ? 1 : 0) - (wasDecided ? 1 : 0);
  S.progress.events_total += added;
  showProgress();
}

function applyResult(i, res) {
  const e = S.events[i];
  countDecided(e.status !== "speech", res.status !== "speech", 0);
  const timesChanged = e.start_s !== res.start_s || e.end_s !== res.end_s;
  Object.assign(e, { status: res.status, label: res.label, start_s: res.start_s, end_s: res.end_s,
    negated: res.negated, rev: res.rev, by: res.by, source: res.status === "speech" ? "speech" : "reviewed" });
  redrawChanged(i, timesChanged);
}

// One change to the selected event: body(e) gives the request from the event as it is when sent (a retry after
// a reload sends it again on the reloaded event).
function change(what, body) {
  const e0 = current();
  if (!e0) { say("no event selected", true); return; }
  const id = e0.id;
  S.undoScan = null;
  return save(`${what} (${e0.label} at ${fmt(e0.start_s)})`, async () => {
    const i = S.events.findIndex((e) => e.id === id);
    if (i < 0) throw Object.assign(new Error("the event is gone (undone or changed elsewhere)"), { status: 404 });
    const e = S.events[i];
    const req = body(e);
    const res = await api("PUT", eventUrl(id), { ...req, rev: e.rev || 0 });
    applyResult(i, res);
    if (req.label) S.lastLabel = req.label;
    say(`saved: ${res.status} ${res.negated ? "NOT " : ""}${res.label}`, false);
  });
}

const edited = (e) => (e.status === "added" ? "added" : "edited");

// Accepting an event the reviewer already edited (or added) confirms the edit: it must not fall back to the
// pipeline's version (3 then a kept the relabel only until a; now it stays).
function accept() {
  change("accept", (e) => (e.status === "edited" || e.status === "added" ? { status: e.status } : { status: "accepted" }));
}
function reject() { change("reject", () => ({ status: "rejected" })); }
function relabel(k) {
  if (!S.scan || k >= S.scan.labels.length) return;
  const label = S.scan.labels[k];
  change(`relabel as ${label}`, (e) => ({ status: edited(e), label }));
}
function negate() { change("negation", (e) => ({ status: edited(e), negated: !e.negated })); }
function nudge(which, d) {
  change(`move the ${which}`, (e) => {
    const dur = S.scan.duration_s;
    let s = e.start_s, t = e.end_s;
    if (which === "start") s = Math.max(0, Math.min(+(s + d).toFixed(3), +(t - MIN_EVENT_S).toFixed(3)));
    else t = Math.min(dur, Math.max(+(t + d).toFixed(3), +(s + MIN_EVENT_S).toFixed(3)));
    return { status: edited(e), start_s: s, end_s: t };
  });
}

function addEvent() {
  const dur = S.scan.duration_s, len = Math.min(1.0, dur);
  const start = +Math.max(0, Math.min(playhead(), dur - len)).toFixed(3);
  const body = { label: S.lastLabel || S.scan.labels[0], start_s: start, end_s: +Math.min(start + len, dur).toFixed(3), negated: false };
  S.undoScan = null;
  return save(`add ${body.label} at ${fmt(start)}`, async () => {
    const res = await api("POST", `/api/scans/${enc(S.scan.scan_id)}/events`, body);
    const ev = { ...res, term: res.label, confidence: 1, source: "reviewed", base: null };
    let i = S.events.findIndex((e) => e.start_s > ev.start_s);
    if (i < 0) i = S.events.length;
    S.events.splice(i, 0, ev);
    countDecided(false, true, 1);
    computeLanes();
    renderEvents(); select(i, false); showScanProgress();
    say(`added ${ev.label} at ${fmt(ev.start_s)} (1–9 to relabel)`, false);
  });
}

// Undo is the server's: the latest change of this reviewer in the scan's saved history (it survives a reload).
// Right after m opened the next scan, u undoes the mark and goes back.
async function undo() {
  if (S.undoScan) {
    const back = S.undoScan;
    S.undoScan = null;
    await save(`undo marking ${back} reviewed`, async () => {
      await api("POST", `/api/scans/${enc(back)}/undo`, {});
      await refreshScans();
      goScan(back);
      say(`${back} reopened`, false);
    });
    return;
  }
  await save("undo", async () => {
    const res = await api("POST", `/api/scans/${enc(S.scan.scan_id)}/undo`, {});
    if (res.nothing) { say("nothing to undo", true); return; }
    if (res.event_id === null) {
      S.scan.reviewed = res.reviewed;
      setReviewedButton(res.reviewed);
      await refreshScans();
      say(res.reviewed ? "undone: scan marked reviewed again" : "undone: scan reopened", false);
      return;
    }
    const i = S.events.findIndex((e) => e.id === res.event_id);
    if (i >= 0) countDecided(S.events[i].status !== "speech", !!res.event && res.event.status !== "speech", res.event ? 0 : -1);
    if (res.event && i >= 0) {
      const timesChanged = S.events[i].start_s !== res.event.start_s || S.events[i].end_s !== res.event.end_s;
      S.events[i] = res.event;
      redrawChanged(i, timesChanged);
    } else {
      await reloadScan();
    }
    say("undone", false);
  });
}

async function toggleReviewed() {
  const done = !S.scan.reviewed, id = S.scan.scan_id;
  const ok = await save(done ? "mark the scan reviewed" : "reopen the scan", async () => {
    await api("PUT", `/api/scans/${enc(id)}/reviewed`, { reviewed: done });
    S.scan.reviewed = done;
    setReviewedButton(done);
    await refreshScans();
  });
  if (!ok) return;
  if (!done) { S.undoScan = null; say("scan reopened", false); return; }
  const next = nextUnreviewed();
  if (next) {
    S.undoScan = id;
    goScan(next);
    say(`${id} marked reviewed; opened ${next} (u: undo and go back)`, false);
  } else {
    S.undoScan = id;
    say(`${id} marked reviewed; every scan is reviewed (u: undo and go back)`, false);
    location.hash = "#/";
  }
}

function step(d) {
  if (!S.order.length) return;
  const k = S.order.indexOf(S.sel);
  if (k < 0) { select(S.order[0], true); return; }
  select(S.order[Math.max(0, Math.min(S.order.length - 1, k + d))], true);
}

function nextUndecided() {
  const k = S.order.indexOf(S.sel);
  for (let j = 1; j <= S.order.length; j++) {
    const i = S.order[(k + j) % S.order.length];
    if (S.events[i].status === "speech") { select(i, true); return; }
  }
  say("no undecided event left in this list (m: mark the scan reviewed)", false);
}

// ---------------------------------------------------------------- keys

function toggleHelp(show) {
  const h = $("help");
  const open = show === undefined ? h.hidden : show;
  h.hidden = !open;
  if (open) $("help-close").focus(); else $("help-button").focus();
}

// Keys are read in the capture phase, before the video element's own controls see them (space on a focused
// video toggled playback twice). Letters are case-folded, so Shift and Caps Lock do not disable them.
function onKey(ev) {
  if (ev.metaKey || ev.altKey || (ev.ctrlKey && ev.key.toLowerCase() !== "z")) return;
  const tag = (ev.target.tagName || "").toLowerCase();
  if (tag === "input" || tag === "textarea" || tag === "select") return;
  let k = ev.key;
  if (k.length === 1 && /[A-Za-z]/.test(k)) k = k.toLowerCase();
  if (!$("help").hidden) {
    if (k === "Escape" || k === "?") { ev.preventDefault(); ev.stopPropagation(); toggleHelp(false); }
    return;
  }
  if (k === "?") { ev.preventDefault(); toggleHelp(true); return; }
  if (tag === "button" && (k === " " || k === "Enter")) return; // a focused button keeps its own keys
  const inScan = !$("scan-view").hidden;
  if (!inScan) {
    if (k === ">" || k === "Enter") { ev.preventDefault(); openNextUnreviewed(); }
    if (k === "u" && S.undoScan) { ev.preventDefault(); undo(); } // the last m led here: reopen that scan
    return;
  }
  const acts = {
    " ": togglePlay, j: () => step(1), k: () => step(-1), ArrowDown: () => step(1), ArrowUp: () => step(-1),
    ".": nextUndecided, a: accept, x: reject, Delete: reject, n: negate, e: addEvent, u: undo,
    z: ev.ctrlKey ? undo : null, m: toggleReviewed, l: toggleLoop, ">": openNextUnreviewed, "<": previousScan,
    "-": () => setRate(-1), "_": () => setRate(-1), "=": () => setRate(1), "+": () => setRate(1),
    ArrowLeft: () => seekTo(playhead() - 1), ArrowRight: () => seekTo(playhead() + 1),
    0: () => { S.view = null; zoom(1, 0); }, r: S.failedAction ? retryFailed : null,
    "[": () => nudge("start", -NUDGE_S), "]": () => nudge("start", NUDGE_S),
    "{": () => nudge("end", -NUDGE_S), "}": () => nudge("end", NUDGE_S),
  };
  let fn = acts[k];
  // digits by their key position too: with Shift (or an AZERTY layout) the 3 key sends another character
  const digit = /^[1-9]$/.test(k) ? Number(k) : /^(Digit|Numpad)[1-9]$/.test(ev.code || "") ? Number(ev.code.slice(-1)) : 0;
  if (!fn && digit) fn = () => relabel(digit - 1);
  if (!fn) return;
  ev.preventDefault();
  ev.stopPropagation();
  if (ev.repeat && ["a", "x", "Delete", "n", "e", "u", "m", "z"].includes(k)) return; // a held key saves once
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
      if (!S.scans.length) await refreshScans();
      await openScan(decodeURIComponent(m[1]));
    } else {
      $("scan-view").hidden = true; $("list-view").hidden = false;
      $("video").pause(); $("audio").pause();
      S.scan = null;
      await loadList();
      document.body.dataset.loaded = "list";
    }
  } catch (err) {
    if (err.status === 0) showFailure("nothing (loading the page)", err, route);
    else say(err.message, true);
  }
}

let lastWord = null;
function highlightWord() {
  const t = playhead();
  const words = $("transcript").children;
  let lo = 0, hi = words.length - 1, best = null; // binary search over the words (speaker spans have no data-t)
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    let j = mid;
    while (j <= hi && words[j].dataset.t === undefined) j++;
    if (j > hi) { hi = mid - 1; continue; }
    if (+words[j].dataset.t <= t) { best = words[j]; lo = j + 1; } else hi = mid - 1;
  }
  if (best === lastWord) return;
  if (lastWord) lastWord.classList.remove("now");
  if (best) best.classList.add("now");
  lastWord = best;
}

function init() {
  window.addEventListener("keydown", onKey, true);
  window.addEventListener("hashchange", route);
  window.addEventListener("resize", () => { drawTimeline(); drawWave(); });
  attachStrip($("timeline"), timelineClick);
  attachStrip($("wave"), waveClick);
  $("mark-reviewed").addEventListener("click", toggleReviewed);
  $("prev-scan").addEventListener("click", previousScan);
  $("next-scan").addEventListener("click", openNextUnreviewed);
  $("open-next").addEventListener("click", openNextUnreviewed);
  $("help-button").addEventListener("click", () => toggleHelp(true));
  $("help-close").addEventListener("click", () => toggleHelp(false));
  $("banner-retry").addEventListener("click", retryFailed);
  $("banner-close").addEventListener("click", hideBanner);
  for (const id of ["s-status", "s-label", "s-speaker", "s-conf"]) {
    $(id).addEventListener("change", () => { renderList(); $(id).blur(); });
  }
  for (const id of ["f-label", "f-status", "f-speaker", "f-conf", "f-order"]) {
    $(id).addEventListener("change", () => {
      const keep = S.sel;
      renderEvents();
      // a new order starts at its top (lowest confidence first); a filter keeps the selection when it still shows
      if (id !== "f-order" && S.order.includes(keep)) select(keep, false);
      else if (S.order.length) select(S.order[0], true);
      $(id).blur();
    });
  }
  for (const b of document.querySelectorAll("[data-act]")) {
    const f = { accept, reject, negate, add: addEvent, undo, loop: toggleLoop }[b.dataset.act];
    b.addEventListener("click", () => { f(); b.blur(); });
  }
  const v = $("video");
  v.addEventListener("error", videoFailed);
  for (const name of ["play", "pause", "seeked", "ratechange", "volumechange"]) v.addEventListener(name, syncAudio);
  for (const el of [v, $("audio")]) el.addEventListener("timeupdate", () => { drawTimeline(); drawWave(); highlightWord(); });
  requestAnimationFrame(tick);
  route();
}

init();
