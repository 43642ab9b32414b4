// prep studio: the page's behaviour. Plain JavaScript, no build step, nothing fetched elsewhere.
// Times are integer milliseconds throughout; the server snaps them to frames again and bills.
"use strict";

const TOKEN = document.querySelector('meta[name="prep-token"]').content;
const $ = (id) => document.getElementById(id);

const S = {
  state: null,          // /api/state: folders, rules, service
  clips: [],            // the library
  byId: {},
  current: null,        // id of the clip in the clip view
  windows: {},          // clip id -> {start, end} (ms)
  analysis: {},         // clip id -> analysis (or {error})
  job: [],              // clip ids in the job, in order
  bill: null,           // the last estimate answer
  billSeq: 0,
  billTimer: null,
  compareSeq: 0,        // the last "Compare models" request (an older answer is dropped)
  following: null,      // name of the job whose events are shown
  source: null,         // its EventSource
  running: false,
  view: null,           // {id, start, end}: the part of the current clip the timeline shows (ms)
  looping: false,       // the player plays the window, in to out, over and over
  events: [],           // a timeline file's events: {clip_id, number, name, start_ms, end_ms}
  stageParts: {},       // progress of the current stage, per clip (0..1): the bar never goes back
};

// -- talking to the studio -----------------------------------------------------------------------

function url(path) {
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
}

async function api(path, options = {}) {
  const init = { method: options.method || "GET", headers: { "X-Prep-Token": TOKEN } };
  if (options.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(path, init);
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) {
    const err = new Error((data && data.error) || `${response.status} ${response.statusText}`);
    err.hint = data && data.hint;
    err.status = response.status;
    err.data = data;
    throw err;
  }
  return data;
}

// -- time ----------------------------------------------------------------------------------------

function fmt(ms) {            // as prep's format_ms: 10000 -> "10.0", 1234 -> "1.234"
  const whole = Math.floor(ms / 1000);
  let frac = String(ms % 1000).padStart(3, "0").replace(/0+$/, "");
  return `${whole}.${frac || "0"}`;
}

function parseTime(text) {    // seconds (12.5) or [H:]M:SS(.mmm) -> ms, or NaN
  const raw = String(text).trim().replace(/s$/, "");
  let m = raw.match(/^(\d+)(?:\.(\d{1,3}))?$/);
  if (m) return Number(m[1]) * 1000 + Number((m[2] || "0").padEnd(3, "0"));
  m = raw.match(/^(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:\.(\d{1,3}))?$/);
  if (m && Number(m[3]) < 60) {
    const seconds = (Number(m[1] || 0) * 60 + Number(m[2])) * 60 + Number(m[3]);
    return seconds * 1000 + Number((m[4] || "0").padEnd(3, "0"));
  }
  return NaN;
}

function rate(clip) {
  return clip && clip.fps_num ? [clip.fps_num, clip.fps_den] : [25, 1];
}

function snap(ms, clip) {     // nearest frame start, halves up (integer arithmetic, as the server)
  const [num, den] = rate(clip);
  const frames = Math.floor((2 * ms * num + 1000 * den) / (2000 * den));
  return Math.floor((2 * frames * 1000 * den + num) / (2 * num));
}

function frameMs(clip) {
  const [num, den] = rate(clip);
  return 1000 * den / num;
}

function clamp(v, lo, hi) { return Math.min(Math.max(v, lo), hi); }

// -- the library ---------------------------------------------------------------------------------

async function loadLibrary() {
  $("library-note").textContent = "Reading the folders…";
  const data = await api("/api/clips");
  S.clips = data.clips;
  S.byId = Object.fromEntries(S.clips.map((c) => [c.id, c]));
  S.job = S.job.filter((id) => S.byId[id]);
  const parts = [`${S.clips.length} video${S.clips.length === 1 ? "" : "s"}`];
  if (data.empty_folders.length) parts.push(`no videos in ${data.empty_folders.join(", ")}`);
  $("library-note").textContent = parts.join("; ");
  renderLibrary();
}

// The chosen model's verdict on the file as it is (wan2.6's where the library gave no other).
function fileVerdict(clip) {
  return (clip.models && clip.models[$("model").value]) || clip;
}

function verdictBadge(clip) {
  const span = document.createElement("span");
  const verdict = fileVerdict(clip);
  span.className = "badge " + (verdict.compliant ? "ok" : "bad");
  span.textContent = clip.error ? "unreadable" : verdict.compliant ? "API accepts" : "API refuses";
  span.title = verdict.compliant ? `${$("model").value} takes this clip as it is` : verdict.problems.join("\n");
  return span;
}

// The chosen model's clip rules: window range, clips per job, billed head per clip count.
function clipRules() {
  return S.state.rules.model_rules[$("model").value];
}

// A check is graded by one model's rules: one made for another model than the chosen one says so.
function checkedForOther(check) {
  return Boolean(check.model) && check.model !== $("model").value;
}

function checkBadge(check) {
  const span = document.createElement("span");
  if (!check) { span.className = "badge"; span.textContent = "not checked"; return span; }
  const other = checkedForOther(check);
  span.className = "badge " + (other ? "" : ({ good: "ok", fair: "warn", poor: "bad" }[check.verdict] || ""));
  span.textContent = other ? `check (${check.model}): ${check.verdict}` : "check: " + check.verdict;
  span.title = (other ? `Graded by ${check.model}'s rules; check again for ${$("model").value}.\n` : "") + check.reasons.join("\n");
  return span;
}

function renderLibrary() {
  const list = $("clips");
  list.replaceChildren();
  for (const clip of S.clips) {
    const li = document.createElement("li");
    li.dataset.testid = "clip";
    li.setAttribute("data-testid", "clip");
    li.dataset.id = clip.id;
    // Focusable, opened with Enter or Space; no role or label of its own, so a screen reader
    // reads what it shows (name, facts, verdicts), not just a name.
    li.tabIndex = 0;
    li.title = `Open ${clip.name}`;
    li.classList.toggle("selected", clip.id === S.current);
    li.classList.toggle("in-job", S.job.includes(clip.id));
    let thumb;
    if (clip.error) {
      thumb = document.createElement("div");
      thumb.className = "thumb none";
      thumb.textContent = "no picture";
    } else {
      thumb = document.createElement("img");
      thumb.className = "thumb";
      thumb.alt = "";
      thumb.loading = "lazy";
      thumb.src = url(`/api/clips/${clip.id}/poster.jpg`);
    }
    const body = document.createElement("div");
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = clip.name;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = clip.error ? clip.error : `${fmt(clip.duration_ms)} s · ${clip.width}×${clip.height}`
      + (clip.fps ? ` · ${Math.round(clip.fps * 100) / 100} fps` : "") + (clip.has_audio ? "" : " · no audio");
    const events = S.events.filter((e) => e.clip_id === clip.id).map((e) => String(e.number).padStart(3, "0"));
    if (events.length) meta.textContent += ` · timeline event${events.length > 1 ? "s" : ""} ${events.join(", ")}`;
    const badges = document.createElement("div");
    badges.className = "badges";
    badges.append(verdictBadge(clip), checkBadge(clip.check));
    body.append(name, meta, badges);
    li.append(thumb, body);
    const verdict = fileVerdict(clip);
    if (!verdict.compliant && verdict.problems.length) {
      const why = document.createElement("ul");
      why.className = "why";
      for (const p of verdict.problems) {
        const item = document.createElement("li");
        item.textContent = p;
        why.append(item);
      }
      li.append(why);
    }
    li.addEventListener("click", () => openClip(clip.id));
    li.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openClip(clip.id); }
    });
    list.append(li);
  }
}

// -- the clip view -------------------------------------------------------------------------------

function defaultWindow(clip) {
  const end = clip.duration_ms <= 30000 ? clip.duration_ms : snap(10000, clip);
  return { start: 0, end };
}

function openClip(id) {
  const clip = S.byId[id];
  if (!clip) return;
  S.current = id;
  if (!S.windows[id]) S.windows[id] = defaultWindow(clip);
  if (S.job.length === 0 && !clip.error && !S.running) S.job.push(id);  // the first clip starts the job
  $("clip-empty").hidden = true;
  $("clip-body").hidden = false;
  $("clip-title").textContent = clip.name;
  if (S.view && S.view.id !== id) S.view = null;
  if (S.looping) setLooping(false);
  $("clip-facts").textContent = clip.error ? clip.error : [
    `${fmt(clip.duration_ms)} s`, `${clip.width}×${clip.height}`, clip.fps ? `${Math.round(clip.fps * 1000) / 1000} fps` : "",
    clip.video_codec, clip.container, clip.has_audio ? "with audio" : "no audio", clip.path,
  ].filter(Boolean).join(" · ");
  const problems = $("clip-problems");
  problems.replaceChildren();
  for (const text of [...clip.problems.map((p) => ["fail", "API: " + p]), ...(clip.advice || []).map((a) => ["", a])]) {
    const li = document.createElement("li");
    li.className = text[0];
    li.textContent = text[1];
    problems.append(li);
  }
  const player = $("player");
  $("player-note").hidden = true;
  if (!clip.error) {
    player.hidden = false;
    player.src = url(`/api/clips/${clip.id}/media`);
    $("strip").src = url(`/api/clips/${clip.id}/strip.jpg`);
  } else {
    // Nothing of the clip before may stay on screen, nor anything that would act on it.
    player.pause();
    player.removeAttribute("src");
    player.load();
    player.hidden = true;
    $("strip").removeAttribute("src");
    const note = $("player-note");
    note.hidden = false;
    note.textContent = `This clip cannot be read: ${clip.error}` + (clip.hint ? ` (${clip.hint})` : "");
  }
  for (const control of ["pick", "run-check", "set-start", "set-end", "window-start", "window-end",
    "zoom-in", "zoom-out", "zoom-fit", "zoom-window", "loop", "seek-start", "seek-end", "copy-spec"]) {
    $(control).disabled = !!clip.error || (S.running && ["pick", "set-start", "set-end", "window-start", "window-end"].includes(control));
  }
  $("window").hidden = !!clip.error;
  renderCheck(clip);
  renderLibrary();
  drawView();
  renderJob();
  loadAnalysis(clip);
  scheduleBill();
}

function currentClip() { return S.current ? S.byId[S.current] : null; }

// -- the view: what part of the clip the timeline shows (zoom) -------------------------------------

function view(clip) {
  if (!S.view || S.view.id !== clip.id) S.view = { id: clip.id, start: 0, end: clip.duration_ms };
  return S.view;
}

function pos(ms, clip) {       // where a time sits on the timeline, in % of its width
  const v = view(clip);
  return v.end > v.start ? 100 * (ms - v.start) / (v.end - v.start) : 0;
}

function len(ms, clip) {       // how wide a length is on the timeline, in %
  const v = view(clip);
  return v.end > v.start ? 100 * ms / (v.end - v.start) : 0;
}

function minSpan(clip) {       // the closest zoom: about a dozen frames across
  return Math.min(clip.duration_ms, Math.max(12 * frameMs(clip), 200));
}

function setView(start, end) {
  const clip = currentClip();
  if (!clip || !clip.duration_ms) return;
  let span = clamp(end - start, minSpan(clip), clip.duration_ms);
  start = clamp(start, 0, clip.duration_ms - span);
  S.view = { id: clip.id, start, end: start + span };
  drawView();
}

function zoom(factor, around) {  // factor < 1 zooms in, keeping `around` (ms) where it is
  const clip = currentClip();
  if (!clip) return;
  const v = view(clip);
  const at = around === undefined ? (v.start + v.end) / 2 : around;
  const span = clamp((v.end - v.start) * factor, minSpan(clip), clip.duration_ms);
  const share = v.end > v.start ? (at - v.start) / (v.end - v.start) : 0.5;
  setView(at - share * span, at - share * span + span);
}

function zoomToWindow() {
  const clip = currentClip();
  if (!clip) return;
  const w = S.windows[clip.id];
  const margin = Math.max((w.end - w.start) * 0.08, frameMs(clip) * 2);
  setView(w.start - margin, w.end + margin);
}

function pan(ms) {
  const clip = currentClip();
  if (!clip) return;
  const v = view(clip);
  setView(v.start + ms, v.end + ms);
}

const TICK_STEPS_MS = [100, 200, 500, 1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000];

function drawRuler(clip) {
  const ruler = $("ruler");
  ruler.replaceChildren();
  const v = view(clip);
  const width = $("timeline").getBoundingClientRect().width || 600;
  const span = v.end - v.start;
  if (!span) return;
  const pxPerMs = width / span;
  const frame = frameMs(clip);
  const framesShown = pxPerMs * frame >= 6;   // a tick on every frame when frames are 6 px apart
  let step = TICK_STEPS_MS.find((ms) => ms * pxPerMs >= 70) || TICK_STEPS_MS[TICK_STEPS_MS.length - 1];
  if (framesShown) {                            // labels on whole frames, every few frames
    const every = [1, 2, 5, 10, 15, 25, 30, 50].find((n) => n * frame * pxPerMs >= 60) || 60;
    step = every * frame;
  }
  const add = (ms, cls, label) => {
    const tick = document.createElement("span");
    tick.className = "tick " + cls;
    tick.style.left = pos(ms, clip) + "%";
    if (label) tick.dataset.label = label;
    ruler.append(tick);
  };
  if (framesShown) {
    const [num, den] = rate(clip);
    const first = Math.ceil(v.start * num / (1000 * den));
    const last = Math.floor(v.end * num / (1000 * den));
    const every = Math.round(step / frame);
    for (let f = first; f <= last; f++) {
      const ms = 1000 * den * f / num;
      const sec = Math.floor(ms / 1000 + 1e-9);
      const inSecond = f - Math.ceil(sec * num / den - 1e-9);   // frames since that second began
      add(ms, "frame" + (f % every === 0 ? " major" : ""), f % every === 0 ? `${sec}s+${inSecond}f` : "");
    }
    ruler.dataset.unit = "frames";
    return;
  }
  ruler.dataset.unit = "seconds";
  const minor = step / 5;
  for (let ms = Math.ceil(v.start / minor) * minor; ms <= v.end; ms += minor) {
    const major = Math.abs(ms / step - Math.round(ms / step)) < 1e-6;
    add(ms, major ? "major" : "minor", major ? fmtClock(ms) : "");
  }
}

function fmtClock(ms) {          // ruler labels: 0:05, 1:02.5
  const minutes = Math.floor(ms / 60000);
  const rest = ms - minutes * 60000;
  const seconds = Math.floor(rest / 1000);
  const tenths = Math.round((rest % 1000) / 100);
  const text = `${minutes}:${String(seconds).padStart(2, "0")}`;
  return tenths && tenths < 10 ? `${text}.${tenths}` : text;
}

function drawView() {
  const clip = currentClip();
  if (!clip) return;
  const v = view(clip);
  const strip = $("strip");
  strip.style.left = pos(0, clip) + "%";
  strip.style.width = len(clip.duration_ms, clip) + "%";
  renderWindow();
  const data = S.analysis[clip.id];
  if (data && !data.error) drawTracks(clip, data);
  drawEvents(clip);
  drawRuler(clip);
  const mark = $("pick-mark");
  if (mark.dataset.start) {
    mark.style.left = pos(Number(mark.dataset.start), clip) + "%";
    mark.style.width = len(Number(mark.dataset.end) - Number(mark.dataset.start), clip) + "%";
  }
  drawPlayhead();
  const whole = v.start === 0 && v.end >= clip.duration_ms;
  $("zoom-label").textContent = whole ? "whole clip" : `showing ${fmt(Math.round(v.start))}–${fmt(Math.round(v.end))} s`;
  $("zoom-out").disabled = whole;
  $("zoom-fit").disabled = whole;
  $("zoom-in").disabled = v.end - v.start <= minSpan(clip) + 0.5;
}

function drawPlayhead() {
  const clip = currentClip();
  if (clip) $("playhead").style.left = pos(Math.round($("player").currentTime * 1000), clip) + "%";
}

function drawEvents(clip) {
  const track = $("track-events");
  const mine = S.events.filter((e) => e.clip_id === clip.id);
  track.hidden = !mine.length;
  track.replaceChildren();
  for (const e of mine) {
    const span = document.createElement("button");
    span.type = "button";
    span.className = "event";
    span.style.left = pos(e.start_ms, clip) + "%";
    span.style.width = len(e.end_ms - e.start_ms, clip) + "%";
    span.textContent = String(e.number).padStart(3, "0");
    span.title = `event ${e.number} (${e.name}): ${fmt(e.start_ms)}–${fmt(e.end_ms)} s; click to use it as the window`;
    span.setAttribute("aria-label", `Use timeline event ${e.number}, ${fmt(e.start_ms)} to ${fmt(e.end_ms)} s, as the window`);
    span.addEventListener("pointerdown", (event) => event.stopPropagation());
    span.addEventListener("click", () => setWindow(e.start_ms, e.end_ms));
    track.append(span);
  }
}

// -- playing the window ------------------------------------------------------------------------

function seekTo(ms) {
  const player = $("player");
  if (!player.getAttribute("src")) return;
  player.currentTime = ms / 1000;
  drawPlayhead();
}

function setLooping(on) {
  S.looping = on;
  const button = $("loop");
  button.setAttribute("aria-pressed", String(on));
  button.classList.toggle("on", on);
  const clip = currentClip();
  const player = $("player");
  if (!on || !clip || clip.error || !player.getAttribute("src")) {
    if (!on) player.pause();
    return;
  }
  const w = S.windows[clip.id];
  const t = player.currentTime * 1000;
  if (t < w.start || t >= w.end - frameMs(clip) / 2) seekTo(w.start);
  player.play().catch(() => {});
  requestAnimationFrame(loopTick);
}

function loopTick() {            // checked every frame the page draws: timeupdate comes too rarely
  const clip = currentClip();
  const player = $("player");
  if (!S.looping || !clip) return;
  const w = S.windows[clip.id];
  const t = player.currentTime * 1000;
  if (t >= w.end || t < w.start - frameMs(clip)) {
    player.currentTime = w.start / 1000;
    S.loops = (S.loops || 0) + 1;
  }
  drawPlayhead();
  requestAnimationFrame(loopTick);
}


function renderWindow() {
  const clip = currentClip();
  if (!clip) return;
  const w = S.windows[clip.id];
  const el = $("window");
  el.style.left = pos(w.start, clip) + "%";
  el.style.width = len(w.end - w.start, clip) + "%";
  el.setAttribute("aria-valuemin", "0");
  el.setAttribute("aria-valuemax", String(clip.duration_ms));
  el.setAttribute("aria-valuenow", String(w.start));
  el.setAttribute("aria-valuetext", `${fmt(w.start)} to ${fmt(w.end)} s`);
  const rules = clipRules();
  const count = S.job.includes(clip.id) ? S.job.length : Math.min(S.job.length + 1, rules.max_clips);
  const cap = rules.billed_head_ms[String(Math.max(count, 1))];
  const head = cap === null ? w.end - w.start : Math.min(cap, w.end - w.start);
  $("head").style.width = (w.end > w.start ? 100 * head / (w.end - w.start) : 0) + "%";
  $("head").title = `billed head: the first ${fmt(head)} s (with ${Math.max(count, 1)} clip${count > 1 ? "s" : ""} in the job)`;
  if (document.activeElement !== $("window-start")) $("window-start").value = fmt(w.start);
  if (document.activeElement !== $("window-end")) $("window-end").value = fmt(w.end);
  const length = w.end - w.start;
  $("window-length").textContent = `${fmt(length)} s long · first ${fmt(head)} s billed`;
  const model = $("model").value;
  let problem = "";
  if (length < rules.min_clip_ms) problem = `The window is ${fmt(length)} s; ${model} needs at least ${fmt(rules.min_clip_ms)} s.`;
  else if (length > rules.max_clip_ms) problem = `The window is ${fmt(length)} s; ${model} takes at most ${fmt(rules.max_clip_ms)} s (prep would keep the first ${fmt(rules.max_clip_ms)} s).`;
  $("window-error").textContent = problem;
  // The header judges what would be sent, the window (prep cuts it from the file), not the file.
  const verdict = $("clip-verdict");
  const refuses = clip.error ? "unreadable" : problem ? "API refuses this window" : "";
  verdict.className = "badge " + (refuses ? "bad" : "ok");
  verdict.textContent = refuses || "API accepts this window";
  verdict.title = clip.error ? clip.error : problem || `a ${fmt(length)} s window of ${clip.name}`;
  const whole = w.start === 0 && w.end >= clip.duration_ms;
  $("clip-spec").textContent = whole ? clip.name : `${clip.name}@${fmt(w.start)}-${fmt(w.end)}`;
  const inJob = S.job.includes(clip.id);
  const add = $("add-to-job");
  add.textContent = inJob ? "Remove from job" : "Add to job";
  add.disabled = S.running || (!inJob && (S.job.length >= rules.max_clips || !!clip.error));
  add.title = !inJob && S.job.length >= rules.max_clips ? `${model} takes at most ${rules.max_clips} clips in a job` : "";
}

function setWindow(start, end, commit = true) {
  const clip = currentClip();
  if (!clip) return;
  const step = Math.max(1, Math.round(frameMs(clip)));
  start = clamp(snap(start, clip), 0, clip.duration_ms);
  end = clamp(snap(end, clip), 0, clip.duration_ms);
  if (end - start < step) {
    if (end >= clip.duration_ms) start = Math.max(0, snap(end - step, clip));
    else end = Math.min(clip.duration_ms, snap(start + step, clip));
  }
  S.windows[clip.id] = { start, end };
  renderWindow();
  if (commit) { renderJob(); scheduleBill(); }
}

async function loadAnalysis(clip) {
  for (const id of ["track-shots", "track-faces", "track-speech", "cuts"]) $(id).replaceChildren();
  $("pick-mark").hidden = true;
  delete $("pick-mark").dataset.start;
  const note = $("analysis-note");
  if (clip.error) { note.textContent = ""; return; }
  if (!S.state.pick.available) {
    note.textContent = `· shots, faces and speech need the pick extra (${S.state.pick.hint})`;
    $("pick").disabled = true;
    $("run-check").disabled = true;
    return;
  }
  $("pick").disabled = true;
  const count = Math.max(1, S.job.includes(clip.id) ? S.job.length : Math.min(S.job.length + 1, clipRules().max_clips));
  note.textContent = "· analysing shots, faces and speech…";
  try {
    const data = await api(`/api/clips/${clip.id}/analysis?clips_in_job=${count}&model=${encodeURIComponent($("model").value)}`);
    S.analysis[clip.id] = data;
    if (S.current !== clip.id) return;
    drawTracks(clip, data);
    note.textContent = data.pick.usable ? "" : "· " + data.pick.warnings.join("; ");
    $("pick").disabled = false;
  } catch (err) {
    S.analysis[clip.id] = { error: err.message };
    if (S.current === clip.id) note.textContent = "· no analysis: " + err.message;
  }
}

function spans(track, items, clip, classes) {
  const el = $(track);
  el.replaceChildren();
  items.forEach((s, i) => {
    const span = document.createElement("span");
    span.style.left = pos(s.start_ms, clip) + "%";
    span.style.width = len(s.end_ms - s.start_ms, clip) + "%";
    if (classes) span.className = classes[i % classes.length];
    span.title = `${fmt(s.start_ms)}–${fmt(s.end_ms)} s`;
    el.append(span);
  });
}

function drawTracks(clip, data) {
  spans("track-shots", data.shots, clip, ["a", "b"]);
  spans("track-faces", data.faces, clip);
  spans("track-speech", data.speech, clip);
  const cuts = $("cuts");
  cuts.replaceChildren();
  for (const ms of data.cuts_ms) {
    const span = document.createElement("span");
    span.style.left = pos(ms, clip) + "%";
    cuts.append(span);
  }
}

async function pickForMe() {
  const clip = currentClip();
  if (!clip) return;
  const count = Math.max(1, S.job.includes(clip.id) ? S.job.length : Math.min(S.job.length + 1, clipRules().max_clips));
  $("pick").disabled = true;
  try {
    const data = await api(`/api/clips/${clip.id}/analysis?clips_in_job=${count}&model=${encodeURIComponent($("model").value)}`);
    if (S.current !== clip.id) return;
    const mark = $("pick-mark");
    mark.hidden = false;
    mark.dataset.start = String(data.pick.start_ms);
    mark.dataset.end = String(data.pick.end_ms);
    mark.style.left = pos(data.pick.start_ms, clip) + "%";
    mark.style.width = len(data.pick.end_ms - data.pick.start_ms, clip) + "%";
    setWindow(data.pick.start_ms, data.pick.end_ms);
    $("analysis-note").textContent = data.pick.usable ? "· picked: " + data.pick.clip_spec
      : "· picked, with warnings: " + data.pick.warnings.join("; ");
  } catch (err) {
    $("analysis-note").textContent = "· cannot pick: " + err.message;
  } finally {
    $("pick").disabled = false;
  }
}

function renderCheck(clip) {
  const summary = $("check-summary");
  const reasons = $("check-reasons");
  reasons.replaceChildren();
  if (clip.error) { summary.textContent = ""; return; }
  if (!clip.check) {
    summary.textContent = S.state.pick.available ? "Not checked yet: how good the clip is as a reference (one person, face, speech, loudness, picture)." : "";
    return;
  }
  summary.textContent = (checkedForOther(clip.check) ? `Verdict by ${clip.check.model}'s rules (Check again for ${$("model").value}): ` : "Verdict: ")
    + clip.check.verdict + (clip.check.reasons.length ? "" : " — every check passed");
  for (const text of clip.check.reasons) {
    const name = text.split(":")[0];
    const li = document.createElement("li");
    li.className = (clip.check.checks[name] || {}).status || "";
    li.textContent = text;
    reasons.append(li);
  }
}

async function runCheck() {
  const clip = currentClip();
  if (!clip) return;
  const button = $("run-check");
  button.disabled = true;
  $("check-summary").textContent = "Checking…";
  try {
    clip.check = await api(`/api/clips/${clip.id}/check`, { method: "POST", body: { model: $("model").value } });
  } catch (err) {
    $("check-summary").textContent = "Could not check: " + err.message;
    return;
  } finally {
    button.disabled = false;
  }
  renderCheck(clip);
  renderLibrary();
}

// -- timeline dragging ---------------------------------------------------------------------------

function timeAt(event, clip) {
  const box = $("timeline").getBoundingClientRect();
  const v = view(clip);
  return clamp(Math.round(v.start + (event.clientX - box.left) / box.width * (v.end - v.start)), 0, clip.duration_ms);
}

function setupTimeline() {
  const timeline = $("timeline");
  let drag = null;
  timeline.addEventListener("pointerdown", (event) => {
    const clip = currentClip();
    if (!clip || clip.error || event.button !== 0 || S.running) return;
    const at = timeAt(event, clip);
    const w = S.windows[clip.id];
    const handle = event.target.dataset ? event.target.dataset.drag : undefined;
    // Inside a window shorter than the clip, a drag moves it; anywhere else it draws a new one.
    const movable = event.target.closest("#window") && w.end - w.start < clip.duration_ms;
    const mode = handle || (movable ? "move" : "new");
    drag = { mode, from: at, start: w.start, end: w.end, x: event.clientX, moved: false };
    timeline.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  timeline.addEventListener("pointermove", (event) => {
    const clip = currentClip();
    if (!drag || !clip) return;
    if (Math.abs(event.clientX - drag.x) > 3) drag.moved = true;
    if (!drag.moved) return;
    const at = timeAt(event, clip);
    if (drag.mode === "start") setWindow(Math.min(at, drag.end - 1), drag.end, false);
    else if (drag.mode === "end") setWindow(drag.start, Math.max(at, drag.start + 1), false);
    else if (drag.mode === "move") {
      const length = drag.end - drag.start;
      const start = clamp(drag.start + at - drag.from, 0, clip.duration_ms - length);
      setWindow(start, start + length, false);
    } else setWindow(Math.min(drag.from, at), Math.max(drag.from, at), false);
  });
  const finish = (event) => {
    const clip = currentClip();
    if (!drag || !clip) return;
    if (!drag.moved) $("player").currentTime = timeAt(event, clip) / 1000;
    else { renderJob(); scheduleBill(); }
    drag = null;
  };
  timeline.addEventListener("pointerup", finish);
  timeline.addEventListener("pointercancel", () => { drag = null; });
  timeline.addEventListener("wheel", (event) => {
    const clip = currentClip();
    if (!clip || clip.error) return;
    event.preventDefault();
    const unit = event.deltaMode === 1 ? 33 : event.deltaMode === 2 ? 400 : 1;  // lines, pages
    if (event.shiftKey || Math.abs(event.deltaX) > Math.abs(event.deltaY)) {
      const v = view(clip);
      const delta = (event.shiftKey ? event.deltaY : event.deltaX) * unit;
      pan(delta / 1000 * (v.end - v.start));
    } else {
      // A notch (100 px) zooms by 1.25; the browser may merge fast notches into one event.
      zoom(Math.pow(1.25, clamp(event.deltaY * unit / 100, -40, 40)), timeAt(event, clip));
    }
  }, { passive: false });
  const win = $("window");
  win.addEventListener("keydown", (event) => {   // the focused window moves by frames or seconds
    const clip = currentClip();
    if (!clip || clip.error || S.running) return;
    const w = S.windows[clip.id];
    const length = w.end - w.start;
    let by = null;
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      by = (event.key === "ArrowLeft" ? -1 : 1) * (event.shiftKey ? 1000 : frameMs(clip));
    } else if (event.key === "PageUp" || event.key === "PageDown") {
      by = (event.key === "PageUp" ? -1 : 1) * length;
    } else if (event.key === "Home") by = -w.start;
    else if (event.key === "End") by = clip.duration_ms - w.end;
    if (by === null) return;
    event.preventDefault();
    moveWindow(by);
  });
  $("zoom-in").addEventListener("click", () => zoom(1 / 2));
  $("zoom-out").addEventListener("click", () => zoom(2));
  $("zoom-fit").addEventListener("click", () => { const c = currentClip(); if (c) setView(0, c.duration_ms); });
  $("zoom-window").addEventListener("click", zoomToWindow);
  $("loop").addEventListener("click", () => setLooping(!S.looping));
  $("seek-start").addEventListener("click", () => { const c = currentClip(); if (c) seekTo(S.windows[c.id].start); });
  $("seek-end").addEventListener("click", () => { const c = currentClip(); if (c) seekTo(S.windows[c.id].end); });
  window.addEventListener("resize", () => { if (currentClip()) drawRuler(currentClip()); });
}

function moveWindow(by) {        // the whole window, its length kept, inside the clip and on frames
  const clip = currentClip();
  const w = S.windows[clip.id];
  const length = w.end - w.start;
  const start = clamp(snap(Math.round(w.start + by), clip), 0, Math.max(0, clip.duration_ms - length));
  setWindow(start, Math.min(clip.duration_ms, start + length));
  const v = view(clip);          // keep the moved window in sight
  const now = S.windows[clip.id];
  if (now.start < v.start) setView(now.start, now.start + (v.end - v.start));
  else if (now.end > v.end) setView(now.end - (v.end - v.start), now.end);
}

// -- the window inputs ---------------------------------------------------------------------------

function setupWindowInputs() {
  for (const which of ["start", "end"]) {
    const input = $(`window-${which}`);
    const commit = () => {
      const clip = currentClip();
      if (!clip) return;
      const ms = parseTime(input.value);
      const w = S.windows[clip.id];
      if (Number.isNaN(ms)) {
        input.classList.add("invalid");
        $("window-error").textContent = `"${input.value}" is not a time: use seconds (12.5) or M:SS.mmm.`;
        return;
      }
      input.classList.remove("invalid");
      if (which === "start") setWindow(ms, Math.max(w.end, ms + 1));
      else setWindow(Math.min(w.start, ms - 1), ms);
      input.value = fmt(S.windows[clip.id][which]);
    };
    input.addEventListener("change", commit);
    input.addEventListener("keydown", (event) => {
      const clip = currentClip();
      if (!clip) return;
      if (event.key === "Enter") { event.preventDefault(); commit(); return; }
      if (event.key === "Escape") { input.value = fmt(S.windows[clip.id][which]); input.classList.remove("invalid"); return; }
      if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
      event.preventDefault();
      const sign = event.key === "ArrowUp" ? 1 : -1;
      const w = S.windows[clip.id];
      const step = event.shiftKey ? 1000 : frameMs(clip);
      const value = snap(Math.round(w[which] + sign * step), clip);
      if (which === "start") setWindow(Math.min(value, w.end - 1), w.end);
      else setWindow(w.start, Math.max(value, w.start + 1));
      input.value = fmt(S.windows[clip.id][which]);
    });
  }
  $("cancel-job").addEventListener("click", cancelJob);
  $("set-start").addEventListener("click", () => atPlayhead("start"));
  $("set-end").addEventListener("click", () => atPlayhead("end"));
  document.addEventListener("keydown", (event) => {
    const tag = (event.target.tagName || "").toLowerCase();
    if (["input", "textarea", "select"].includes(tag) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "i") atPlayhead("start");
    if (event.key === "o") atPlayhead("end");
    const clip = currentClip();
    if (!clip || clip.error) return;
    if (event.key === "+" || event.key === "=") zoom(1 / 2);
    else if (event.key === "-") zoom(2);
    else if (event.key === "0") setView(0, clip.duration_ms);
    else if (event.key === "z") zoomToWindow();
    else if (event.key === "l") setLooping(!S.looping);
    else if (event.key === "[") seekTo(S.windows[clip.id].start);
    else if (event.key === "]") seekTo(S.windows[clip.id].end);
    else if (event.target === $("window")) return;   // its own arrows move it
    else if ([",", ".", "<", ">"].includes(event.key)) {
      const back = event.key === "," || event.key === "<";
      const seconds = event.key === "<" || event.key === ">" || event.shiftKey;
      moveWindow((back ? -1 : 1) * (seconds ? 1000 : frameMs(clip)));
    }
  });
}

function atPlayhead(which) {
  const clip = currentClip();
  if (!clip || S.running) return;
  const at = Math.round($("player").currentTime * 1000);
  const w = S.windows[clip.id];
  if (which === "start") setWindow(at, Math.max(w.end, at + 1));
  else setWindow(Math.min(w.start, at - 1), at);
}

function setupPlayer() {
  const player = $("player");
  player.addEventListener("timeupdate", () => {
    const clip = currentClip();
    if (clip) drawPlayhead();
  });
  player.addEventListener("error", () => {
    if (!player.getAttribute("src")) return;
    const note = $("player-note");
    note.hidden = false;
    note.textContent = "This browser cannot play this clip's format; the timeline, window and bill still work (prep converts it when it prepares the job).";
  });
}

// -- the job -------------------------------------------------------------------------------------

function jobBody() {
  return {
    clips: S.job.map((id) => ({ id, start_ms: S.windows[id].start, end_ms: S.windows[id].end })),
    prompt: $("prompt").value,
    duration: Number($("duration").value),
    quality: $("quality").value,
    aspect_ratio: $("aspect").value,
    model: $("model").value,
    generate_audio: S.state.rules.audio_switch_models.includes($("model").value) ? $("audio").checked : null,
  };
}

function renderJob() {
  const list = $("job-clips");
  list.replaceChildren();
  $("job-empty").hidden = S.job.length > 0;
  const billed = S.bill && S.bill.bill ? S.bill.bill.clips : [];
  S.job.forEach((id, i) => {
    const clip = S.byId[id];
    const w = S.windows[id];
    const li = document.createElement("li");
    const row = document.createElement("div");
    row.className = "row";
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    const whole = w.start === 0 && w.end >= clip.duration_ms;
    open.textContent = whole ? clip.name : `${clip.name}@${fmt(w.start)}-${fmt(w.end)}`;
    open.title = "Show this clip";
    open.addEventListener("click", () => openClip(id));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "quiet";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove ${clip.name} from the job`);
    remove.disabled = S.running;
    remove.addEventListener("click", () => toggleInJob(id));
    row.append(open, remove);
    li.append(row);
    if (billed[i]) {
      const meta = document.createElement("div");
      meta.className = "dim small";
      meta.textContent = `${fmt(Math.round(billed[i].duration_s * 1000))} s, billed ${fmt(Math.round(billed[i].billed_s * 1000))} s`;
      li.append(meta);
    }
    list.append(li);
  });
  renderLibraryMarks();
}

function renderLibraryMarks() {
  for (const li of $("clips").children) {
    li.classList.toggle("in-job", S.job.includes(li.dataset.id));
    li.classList.toggle("selected", li.dataset.id === S.current);
  }
}

function toggleInJob(id) {
  if (S.running) return;
  const at = S.job.indexOf(id);
  if (at >= 0) S.job.splice(at, 1);
  else if (S.job.length < clipRules().max_clips) S.job.push(id);
  renderJob();
  renderWindow();
  scheduleBill();
}

function scheduleBill() {
  clearTimeout(S.billTimer);
  renderPromptCount();
  if (S.state.api_key === "set" && S.bill && S.bill.bill) {   // the prompt's own rules need no server
    const n = $("prompt").value.length;
    S.bill.prompt_error = n > S.state.rules.max_prompt_chars
      ? `the prompt is ${n} characters; the API takes at most ${S.state.rules.max_prompt_chars}` : null;
    renderGenerate();
  }
  S.billTimer = setTimeout(updateBill, 120);
}

function renderPromptCount() {
  const n = $("prompt").value.length;
  const max = S.state.rules.max_prompt_chars;
  const count = $("prompt-count");
  count.textContent = `${n} / ${max} characters` + (n > max ? ` — ${n - max} too many` : "");
  count.classList.toggle("over", n > max);
}

async function updateBill() {
  clearTimeout(S.billTimer);
  const seq = ++S.billSeq;
  if (!S.job.length) {
    S.bill = null;
    renderBill();
    return null;
  }
  let data;
  try {
    data = await api("/api/estimate", { method: "POST", body: jobBody() });
  } catch (err) {
    data = { bill: null, problems: [{ error: err.message, hint: err.hint || "" }], prompt_error: null };
  }
  if (seq !== S.billSeq) return data;   // a newer change is on its way: it renders
  S.bill = data;
  renderBill();
  if (!$("compare-box").hidden) updateCompare();
  renderJob();
  return data;
}

function renderBill() {
  const data = S.bill;
  const bill = data && data.bill;
  $("cost").textContent = bill ? bill.credits_text : "—";
  const detail = $("bill-detail");
  const notes = $("bill-notes");
  const problems = $("problems");
  notes.replaceChildren();
  problems.replaceChildren();
  if (bill) {
    detail.textContent = `input ${fmt(Math.round(bill.input_billed_s * 1000))} s + output ${fmt(Math.round(bill.output_billed_s * 1000))} s `
      + `= ${fmt(Math.round(bill.total_billed_s * 1000))} s billed at ${bill.quality} (about $${bill.usd.toFixed(2)}); `
      + `720p: ${bill.by_quality_text["720p"]}, 1080p: ${bill.by_quality_text["1080p"]}`;
    for (const text of bill.notes) {
      const li = document.createElement("li");
      li.textContent = text;
      notes.append(li);
    }
  } else {
    detail.textContent = S.job.length ? "" : "Add a clip to see the bill.";
  }
  for (const p of (data && data.problems) || []) {
    const li = document.createElement("li");
    li.textContent = p.error + (p.hint ? ` (${p.hint})` : "");
    problems.append(li);
  }
  $("command").textContent = data && data.command ? data.command : "";
  renderGenerate();
}

// "Compare models": the job's clips and options priced on every model (the server's
// estimate --compare), with what each would cut or refuse.
function toggleCompare() {
  const box = $("compare-box");
  box.hidden = !box.hidden;
  $("compare").setAttribute("aria-expanded", String(!box.hidden));
  if (!box.hidden) updateCompare();
}

async function updateCompare() {
  const seq = ++S.compareSeq;
  const status = $("compare-status");
  const body = $("compare-rows");
  if (!S.job.length) {
    body.replaceChildren();
    status.textContent = "Add a clip to compare the models.";
    return;
  }
  status.textContent = "Pricing the job on every model…";
  let data;
  try {
    data = await api("/api/compare", { method: "POST", body: jobBody() });
  } catch (err) {
    if (seq !== S.compareSeq) return;
    body.replaceChildren();
    status.textContent = err.message + (err.hint ? ` (${err.hint})` : "");
    return;
  }
  if (seq !== S.compareSeq) return;
  const cheapest = data.cheapest;
  body.replaceChildren();
  for (const row of data.models) {
    const tr = document.createElement("tr");
    tr.setAttribute("data-testid", "compare-row");
    if (row.model === data.chosen_model) tr.classList.add("chosen");
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = row.model + (row.model === data.chosen_model ? " (chosen)" : "");
    const audio = document.createElement("td");
    audio.textContent = row.generate_audio === null ? "" : (row.generate_audio ? "with audio" : "no audio");
    const credits = document.createElement("td");
    const best = cheapest && cheapest.model === row.model && cheapest.generate_audio === row.generate_audio;
    credits.textContent = row.accepted ? row.credits_text + (best ? " (cheapest)" : "") : "refuses";
    const why = document.createElement("td");
    why.textContent = row.accepted
      ? [`${fmt(Math.round(row.billed_input_s * 1000))} s in + ${fmt(Math.round(row.billed_output_s * 1000))} s out billed`, ...row.cuts].join("; ")
      : row.problems.join("; ");
    tr.append(name, audio, credits, why);
    body.append(tr);
  }
  status.textContent = `At ${data.quality}, ${data.output_s === -1 ? "the model's own duration" : data.output_s + " s of output"}; prices: ${data.price_source}.`;
}

function renderGenerate() {
  const data = S.bill;
  const button = $("generate");
  let why = "";
  if (S.running) why = "A job is running.";
  else if (!S.job.length) why = "Add a clip to the job.";
  else if (!data || !data.bill) why = data && data.problems.length ? "Fix the problems above first." : "Working out the bill…";
  else if (!$("prompt").value.trim()) why = "Write a prompt.";
  else if (data.prompt_error) why = data.prompt_error;
  else if (S.state.api_key !== "set") why = "No EvoLink API key is configured (set EVOLINK_API_KEY, or start with --sandbox).";
  button.disabled = !!why;
  $("generate-why").textContent = why;
  $("dock-cost").textContent = $("cost").textContent;
  $("dock-why").textContent = why;
}

function askToConfirm(bill) {
  return new Promise((resolve) => {
    const dialog = $("confirm");
    $("confirm-text").textContent = `${bill.credits_text} will be charged by ${S.state.service} when the task is created `
      + `(${fmt(Math.round(bill.total_billed_s * 1000))} billed seconds at ${bill.quality}). prep sends the job once, and never twice.`;
    $("confirm-ok").textContent = `Spend ${bill.credits_text}`;
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}

async function generate() {
  const data = await updateBill();   // the bill of the job as it is now, not as it was typed
  if (data !== S.bill) return;       // it changed meanwhile: look at the new bill first
  if (!data || !data.bill || $("generate").disabled) return;
  if (!(await askToConfirm(data.bill))) return;
  try {
    const answer = await api("/api/jobs", { method: "POST", body: { ...jobBody(), confirm_units: data.bill.credits_units } });
    follow(answer.name);
  } catch (err) {
    if (err.status === 409 && err.data && err.data.bill) await updateBill();
    showBanner(err.message + (err.hint ? ` (${err.hint})` : ""));
  }
}

// -- following a job -----------------------------------------------------------------------------

const STAGE_LABEL = { check: "checking", prepare: "preparing the clips", upload: "uploading",
  submit: "submitting", rendering: "rendering", download: "downloading" };

function setRunning(running) {
  S.running = running;
  for (const id of ["prompt", "duration", "quality", "aspect", "model", "audio", "window-start", "window-end", "set-start", "set-end", "pick"]) {
    $(id).disabled = running;
  }
  renderJob();
  renderWindow();
  renderGenerate();
}

function resetProgress(name) {
  $("progress").hidden = false;
  $("job-name").textContent = name;
  const stages = $("stages");
  stages.replaceChildren();
  for (const stage of S.state.stages) {
    const li = document.createElement("li");
    li.dataset.stage = stage;
    li.textContent = stage;
    stages.append(li);
  }
  $("job-notes").replaceChildren();
  $("job-retry").hidden = true;
  $("cancel-job").hidden = false;
  $("cancel-job").disabled = false;
  $("job-bar").value = 0;
  $("result-box").hidden = true;
  setStatus("queued");
}

function setStatus(text, kind = "") {
  const el = $("job-status");
  el.textContent = text;
  el.className = "job-status " + kind;
}

function markStage(stage) {
  let seen = false;
  for (const li of [...$("stages").children].reverse()) {
    if (li.dataset.stage === stage) { seen = true; li.className = "active"; }
    else li.className = seen ? "done" : "";
  }
}

function follow(name) {
  if (S.source) S.source.close();
  S.following = name;
  history.replaceState(null, "", url("/") + "#job=" + encodeURIComponent(name));
  resetProgress(name);
  setRunning(true);
  const source = new EventSource(url(`/api/jobs/${encodeURIComponent(name)}/events`));
  S.source = source;
  source.addEventListener("open", () => resetProgress(name));   // the server replays from the start
  source.addEventListener("message", (message) => onEvent(JSON.parse(message.data)));
}

function onEvent(event) {
  const bar = $("job-bar");
  if (event.type === "queued") setStatus(`queued: ${event.credits_text}`);
  else if (event.type === "stage") {
    if (S.state.stages.includes(event.stage)) markStage(event.stage);
    setStatus(STAGE_LABEL[event.stage] || event.stage);
    S.stageParts = {};
    bar.removeAttribute("value");
  } else if (event.type === "progress") {
    if (event.total) {
      // One bar for the stage: each clip's share of it, and no part ever goes back.
      const key = event.label || "";
      S.stageParts[key] = Math.max(S.stageParts[key] || 0, Math.min(1, event.done / event.total));
      const perClip = ["prepare", "upload"].includes(event.stage);
      const parts = Math.max(Object.keys(S.stageParts).length, perClip ? (S.job.length || 1) : 1);
      const sum = Object.values(S.stageParts).reduce((a, b) => a + b, 0);
      const value = Math.round(100 * sum / parts);
      bar.value = bar.hasAttribute("value") ? Math.max(bar.value, value) : value;
      setStatus(`${STAGE_LABEL[event.stage] || event.stage} ${bar.value}%`);
    }
  } else if (event.type === "task") {
    markStage("rendering");
    bar.value = event.progress;
    setStatus(event.status === "pending" ? "rendering: waiting in the queue" : `rendering ${event.progress}%`);
  } else if (event.type === "retry") {
    $("job-retry").hidden = false;
    $("job-retry").textContent = event.text;
  } else if (event.type === "note") {
    const li = document.createElement("li");
    li.textContent = event.text;
    $("job-notes").append(li);
  } else if (event.type === "finished") {
    if (S.source) { S.source.close(); S.source = null; }
    finished(event);
  }
}

async function cancelJob() {
  if (!S.following) return;
  $("cancel-job").disabled = true;
  try {
    await api(`/api/jobs/${encodeURIComponent(S.following)}/cancel`, { method: "POST" });
  } catch (err) {
    $("cancel-job").disabled = false;
  }
}

function finished(event) {
  setRunning(false);
  $("cancel-job").hidden = true;
  $("job-retry").hidden = true;
  const bar = $("job-bar");
  if (event.ok) {
    for (const li of $("stages").children) li.className = "done";
    bar.value = 100;
    setStatus(`completed${event.resumed ? " (resumed: nothing new was paid)" : ""}` +
      (event.credits_reserved ? ` · ${event.credits_reserved} credits` : ""), "completed");
    showResult(S.following, event.result);
  } else {
    bar.value = 0;
    setStatus(outcomeText(event), "failed");
  }
}

function outcomeText(event) {     // a job that did not complete: not sent, failed, or lost from sight
  const hint = event.hint ? ` (${event.hint})` : "";
  if (event.state === "declined") return `not sent: ${event.error || event.state}${hint}`;
  if (["failed", "error"].includes(event.state)) return `failed: ${event.error || event.state}${hint}`;
  // Still pending or running when prep stopped following it (the service went away, say): the
  // job did not fail, and the task may still finish; say where it stood and how to pick it up.
  const cause = (event.error || "").replace(/^job .+? is [a-z]+: /, "");
  return `stopped following the job while it was ${event.state}` + (cause ? `: ${cause}` : "") + hint;
}

function showResult(name, path) {
  const source = url(`/api/jobs/${encodeURIComponent(name)}/result`);
  $("result-box").hidden = false;
  $("result").src = source;
  $("result-link").href = source;
  $("result-path").textContent = path || "";
}

async function restoreJob(name) {
  const data = await api("/api/jobs");
  const job = data.jobs.find((j) => j.name === name) || data.jobs.find((j) => j.running);
  if (!job) return;
  if (job.draft) {
    S.job = job.draft.clips.map((c) => c.clip_id).filter((id) => S.byId[id]);
    for (const c of job.draft.clips) S.windows[c.clip_id] = { start: c.start_ms, end: c.end_ms };
    $("prompt").value = job.draft.prompt;
    $("quality").value = job.draft.quality;
    $("aspect").value = job.draft.aspect_ratio;
    $("model").value = job.draft.model;
    if (job.draft.generate_audio !== null) $("audio").checked = job.draft.generate_audio;
    renderModel(job.draft.duration);
    if (S.job.length) openClip(S.job[0]);
    follow(job.name);
  } else if (job.journal) {            // a job from an earlier session, known from the journal
    resetProgress(job.name);
    S.following = job.name;
    setStatus(`${job.journal.state} (from the output folder's journal)`, job.journal.state === "done" ? "completed" : "");
    if (job.result) showResult(job.name, job.result);
  }
}

// -- set-up --------------------------------------------------------------------------------------

function fillSelect(id, values, chosen, label = (v) => v) {
  const select = $(id);
  select.replaceChildren();
  for (const value of values) {
    const option = document.createElement("option");
    option.value = String(value);
    option.textContent = label(value);
    select.append(option);
  }
  select.value = String(chosen);
}

function renderModel(duration) {
  $("audio-row").hidden = !S.state.rules.audio_switch_models.includes($("model").value);
  $("job-empty").textContent = `No clip yet: open a clip and add it (${$("model").value} takes 1 to ${clipRules().max_clips}).`;
  renderDuration(duration);
}

// The output durations the chosen model takes with reference videos (a studio job always has
// them), from its table: wan2.6 2-10 s, wan2.7 2-10 s, wan3.0 and prime 2-30 s or -1.
function durationRange(model) {
  const m = S.state.rules.model_rules[model];
  const high = m.max_output_with_videos_s ? Math.min(m.max_output_s, m.max_output_with_videos_s) : m.max_output_s;
  const values = m.smart_duration ? [-1] : [];
  for (let s = m.min_output_s; s <= high; s++) values.push(s);
  return { low: m.min_output_s, high, values, smart: m.smart_duration, hold: m.smart_hold_s, fallback: m.default_output_s };
}

// Fill the duration field with the model's range, keeping `wanted` (default: the value shown)
// when the model takes it; otherwise the nearest it takes, said in a visible note.
function renderDuration(wanted) {
  const model = $("model").value;
  const range = durationRange(model);
  const want = Number(wanted === undefined ? ($("duration").value || range.fallback) : wanted);
  let chosen = want;
  let message = "";
  if (want === -1 && !range.smart) {
    chosen = range.fallback;
    message = `${model} has no smart duration (-1): the duration is now ${chosen} s.`;
  } else if (want !== -1 && (want > range.high || want < range.low)) {
    chosen = Math.min(range.high, Math.max(range.low, want));
    message = `${model} makes ${range.low}-${range.high} s of output with reference clips, not ${want} s: the duration is now ${chosen} s.`;
  }
  fillSelect("duration", range.values, chosen,
    (s) => s === -1 ? `model chooses (held as ${range.hold} s)` : `${s} s`);
  $("duration-note").textContent = message;
  $("duration-note").hidden = !message;
}

function showBanner(text) {
  const banner = $("banner");
  banner.textContent = text;
  banner.hidden = !text;
}

async function main() {
  S.state = await api("/api/state");
  const r = S.state.rules;
  const service = $("service");
  service.textContent = S.state.service === "sandbox" ? "sandbox: nothing is paid" : `jobs go to ${S.state.service}`;
  service.className = "badge " + (S.state.service === "sandbox" ? "ok" : "warn");
  $("out-dir").textContent = `results in ${S.state.out_dir}`;
  if (S.state.api_key !== "set") showBanner("No EvoLink API key is configured: you can look and bill, not generate (set EVOLINK_API_KEY, or run prep studio --sandbox to try it).");
  fillSelect("quality", r.qualities, r.default_quality);
  fillSelect("aspect", r.aspect_ratios, r.default_aspect_ratio, (a) => a === "auto" ? "auto (from the clips)" : a);
  fillSelect("model", r.models, r.default_model);
  renderModel(r.model_rules[r.default_model].default_output_s);
  renderPromptCount();
  for (const id of ["quality", "aspect", "audio"]) $(id).addEventListener("change", scheduleBill);
  $("duration").addEventListener("change", () => { $("duration-note").hidden = true; scheduleBill(); });
  $("compare").addEventListener("click", toggleCompare);
  $("model").addEventListener("change", () => {
    renderModel(); renderLibrary(); renderWindow(); scheduleBill();
    if (currentClip()) renderCheck(currentClip());
  });
  $("prompt").addEventListener("input", scheduleBill);
  $("refresh").addEventListener("click", () => loadLibrary().catch((err) => showBanner(err.message)));
  $("pick").addEventListener("click", pickForMe);
  $("run-check").addEventListener("click", runCheck);
  $("add-to-job").addEventListener("click", () => { if (S.current) toggleInJob(S.current); });
  $("copy-spec").addEventListener("click", () => {
    if (navigator.clipboard) navigator.clipboard.writeText($("clip-spec").textContent).catch(() => {});
  });
  $("generate").addEventListener("click", generate);
  setupTimeline();
  setupWindowInputs();
  setupPlayer();
  await loadLibrary();
  renderBill();
  const hash = new URLSearchParams(location.hash.slice(1));
  // A timeline file's events: each its clip's window (the first one of the clip), drawn on it.
  S.events = (S.state.events || []).map((e) => ({ ...e, clip_id: e.clip_ids.find((id) => S.byId[id]) }))
    .filter((e) => e.clip_id);
  for (const e of S.events) {
    const clip = S.byId[e.clip_id];
    if (!S.windows[e.clip_id]) S.windows[e.clip_id] = { start: snap(e.start_ms, clip), end: snap(e.end_ms, clip) };
  }
  if (S.events.length) renderLibrary();
  if (S.events.length && !hash.get("job")) openClip(S.events[0].clip_id);
  await restoreJob(hash.get("job"));
}

main().catch((err) => showBanner("The studio could not start: " + err.message));
