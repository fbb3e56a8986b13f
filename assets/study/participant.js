"use strict";
const CFG = __CONFIG__;
const $ = (id) => document.getElementById(id);
let token = new URLSearchParams(location.search).get("p");
let current = null, shownAt = null, busy = false;

function show(id) { for (const s of ["welcome", "trial", "done", "problem"]) $(s).classList.toggle("hidden", s !== id); }
function problem(text) { $("problem-text").textContent = text; show("problem"); }

async function call(method, path, body) {
  const opts = {method, headers: {"Content-Type": "application/json"}, credentials: "same-origin", cache: "no-store"};
  if (body !== undefined) opts.body = JSON.stringify(body);
  const resp = await fetch(CFG.base + path, opts);   // network errors throw
  let data = null;
  try { data = await resp.json(); } catch (e) { data = {error: "The server gave an unreadable answer."}; }
  return {status: resp.status, data};
}

function render(state) {
  $("progress-text").textContent = state.finished ? "" : `Comparison ${state.done + 1} of ${state.total}`;
  $("bar").style.width = `${100 * state.done / Math.max(state.total, 1)}%`;
  if (state.finished) { finish(state); return; }
  current = state.trial; shownAt = null;
  const box = $("images"); box.classList.add("loading");
  for (const b of document.querySelectorAll("#answers button")) b.disabled = true;
  const imgs = [["img-source", current.source], ["img-left", current.left], ["img-right", current.right]];
  let pending = imgs.length;
  const handle = current.handle;
  const ready = () => {
    if (--pending > 0 || !current || current.handle !== handle) return;
    box.classList.remove("loading"); shownAt = performance.now();
    for (const b of document.querySelectorAll("#answers button")) b.disabled = false;
  };
  for (const [id, name] of imgs) {
    const img = $(id);
    img.onload = ready;
    img.onerror = () => { $("trial-status").textContent = "An image did not load; reload the page to try again."; };
    img.src = `${CFG.base}/media/${name}`;
    if (img.complete && img.naturalWidth > 0) { img.onload = null; ready(); }
  }
  show("trial");
}

function finish(state) {
  current = null;
  $("completion").textContent = state.completion_code || "";
  show("done");
  if (state.completion_url) {          // Prolific: back to the platform with the completion code
    $("redirect-note").classList.remove("hidden"); $("close-note").classList.add("hidden");
    setTimeout(() => location.assign(state.completion_url), 1500);
  } else if (state.submit) {           // MTurk: post the assignment to externalSubmit
    const form = $("mturk-form");
    form.setAttribute("action", state.submit.action);
    $("mturk-assignment").value = state.submit.assignmentId;
    $("mturk-code").value = state.completion_code || "";
    form.classList.remove("hidden"); $("close-note").classList.add("hidden");
  }
}

async function answer(choice) {
  if (!current || busy || shownAt === null) return;
  busy = true;
  const body = {p: token, handle: current.handle, choice, client_ms: Math.round(performance.now() - shownAt)};
  for (const b of document.querySelectorAll("#answers button")) b.disabled = true;
  $("trial-status").textContent = "";
  let wait = 500;
  for (;;) {
    try {
      const r = await call("POST", "/api/vote", body);
      if (r.status === 200) { $("saved").textContent = "saved"; busy = false; render(r.data); return; }
      $("trial-status").textContent = r.data.error || `The server refused the answer (${r.status}).`;
      busy = false;
      if (r.status === 409) { await resume(); }
      else { for (const b of document.querySelectorAll("#answers button")) b.disabled = false; }
      return;
    } catch (e) {   // dropped connection: retry the same answer (a repeat is harmless)
      $("trial-status").textContent = "Connection lost; trying again...";
      await new Promise((ok) => setTimeout(ok, wait)); wait = Math.min(wait * 2, 8000);
    }
  }
}

async function resume() {
  let wait = 500;
  for (;;) {
    try {
      const r = await call("GET", `/api/state?p=${encodeURIComponent(token)}`);
      if (r.status === 200) { render(r.data); return; }
      problem(r.data.error || "This link cannot be used."); return;
    } catch (e) {
      $("trial-status").textContent = "Connection lost; trying again...";
      await new Promise((ok) => setTimeout(ok, wait)); wait = Math.min(wait * 2, 8000);
    }
  }
}

async function start() {
  $("start").disabled = true;
  try {
    const r = await call("POST", "/api/join", {consent: $("consent").checked, code: $("code").value, platform: CFG.platform || {}});
    if (r.status !== 200) { $("welcome-status").textContent = r.data.error; $("start").disabled = false; return; }
    token = r.data.token;
    history.replaceState(null, "", `${CFG.base}?p=${encodeURIComponent(token)}`);
    render(r.data.state);
  } catch (e) { $("welcome-status").textContent = "The server cannot be reached; please try again."; $("start").disabled = false; }
}

function setup() {
  const info = CFG.info;
  $("instructions").textContent = info.instructions;
  $("consent-text").textContent = info.consent;
  $("count").textContent = info.total;
  $("question").textContent = info.question;
  for (const a of info.answers) {
    const b = document.createElement("button");
    b.id = `answer-${a.key}`; b.dataset.choice = a.key; b.disabled = true;
    b.textContent = a.label;
    const k = document.createElement("kbd");
    k.textContent = a.shortcuts.map((s) => ({ArrowLeft: "\u2190", ArrowRight: "\u2192", ArrowUp: "\u2191", ArrowDown: "\u2193"}[s] || s)).join("  or  ");
    b.appendChild(k);
    b.addEventListener("click", () => answer(a.key));
    $("answers").appendChild(b);
  }
  if (CFG.preview) { $("preview-note").classList.remove("hidden"); $("consent").disabled = true; }
  $("consent").addEventListener("change", () => { $("start").disabled = CFG.preview || !$("consent").checked; });
  $("start").addEventListener("click", start);
  document.addEventListener("keydown", (ev) => {
    if (ev.target && ev.target.tagName === "INPUT") return;
    for (const a of info.answers) {
      if (a.shortcuts.includes(ev.key)) { ev.preventDefault(); answer(a.key); return; }
    }
  });
  if (token) resume(); else show("welcome");
}
setup();
