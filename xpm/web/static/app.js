// The page of the web monitor: plain JavaScript, no build step, nothing fetched from elsewhere.
// Views are chosen by the URL's hash (#/, #/experiments/ID, #/jobs, #/experiments/ID/runs,
// #/experiments/ID/runs/RUN, #/job/TASK/ID); the server's event stream says when something changed, and the view
// then fetches what it shows (one page of rows, never every job).
"use strict";

const TOKEN = document.querySelector('meta[name="xpm-token"]').content;
const TOKEN_HEADER = document.querySelector('meta[name="xpm-token-header"]').content;
const PAGE_SIZE = 50;
const STATES = ["running", "error", "scheduled", "ready", "waiting", "unscheduled", "done"];
const main = document.getElementById("main");

// --- helpers -----------------------------------------------------------------------------

// An element with attributes (on* are listeners) and children (strings become text: never HTML).
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { [TOKEN_HEADER]: TOKEN, Accept: "application/json" },
    credentials: "same-origin",
  });
  let body;
  try {
    body = await response.json();
  } catch (e) {
    body = { message: `HTTP ${response.status}` };
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function time(ts) {
  if (ts === null || ts === undefined) return "";
  const d = new Date(ts * 1000);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  seconds = Math.max(0, Math.floor(seconds));
  const d = Math.floor(seconds / 86400), hh = Math.floor((seconds % 86400) / 3600);
  const mm = Math.floor((seconds % 3600) / 60), ss = seconds % 60;
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${String(mm).padStart(2, "0")}m`;
  if (mm) return `${mm}m ${String(ss).padStart(2, "0")}s`;
  return `${ss}s`;
}

// A duration that keeps counting while the job runs (see the timer at the end).
function durationCell(start, end) {
  if (start === null || start === undefined) return h("span", { class: "duration" });
  const attrs = { class: "duration", "data-start": start };
  if (end === null || end === undefined) attrs["data-running"] = "1";
  const span = h("span", attrs, duration((end ?? Date.now() / 1000) - start));
  return span;
}

function badge(state, reason) {
  return h("span", { class: `state state-${state}`, title: reason || state }, state.toUpperCase());
}

function tagsText(tags) {
  return Object.entries(tags || {}).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
}

function progressBar(value, desc) {
  if (value === null || value === undefined) return h("span", { class: "progress empty" });
  const pct = Math.round(Math.min(1, Math.max(0, value)) * 100);
  const bar = h("span", { class: "bar" });
  bar.style.width = `${pct}%`;  // (through the CSSOM: the page's policy forbids inline style attributes)
  return h("span", { class: "progress", title: desc ? `${desc} (${pct}%)` : `${pct}%` },
    bar, h("span", { class: "pct" }, `${pct}%`));
}

function jobHref(task, id) {
  return `#/job/${encodeURIComponent(task)}/${encodeURIComponent(id)}`;
}

function setCrumbs(...items) {
  const nav = document.getElementById("crumbs");
  nav.replaceChildren(...items.flatMap((item, i) => [i ? " / " : "", item]));
}

function showProblems(problems) {
  const list = document.getElementById("problems");
  list.replaceChildren(...(problems || []).map((p) => h("li", {}, p)));
  list.hidden = !problems || problems.length === 0;
}

function errorBox(error) {
  return h("div", { class: "error", role: "alert" }, error.message);
}

// --- views ---------------------------------------------------------------------------------

class ExperimentsView {
  async render() {
    setCrumbs(h("span", {}, "experiments"));
    const data = await api("/api/experiments");
    showProblems(data.problems);
    const rows = data.experiments.map((xp) =>
      h("tr", { "data-experiment": xp.id },
        h("td", {}, h("a", { href: `#/experiments/${encodeURIComponent(xp.id)}` }, xp.id)),
        h("td", {}, xp.status ? h("span", { class: `run run-${xp.status}` }, xp.status) : ""),
        h("td", {}, h("a", { href: `#/experiments/${encodeURIComponent(xp.id)}/runs`, title: "the runs" }, xp.run_id || "")),
        h("td", {}, xp.host || ""),
        h("td", {}, time(xp.started_at)),
        h("td", { class: "counts" }, STATES.filter((s) => xp.states[s]).map((s) =>
          h("span", { class: `count state-${s}`, title: s }, `${xp.states[s]} ${s}`))),
        h("td", { class: "num" }, `${xp.states.done || 0}/${xp.total}`)));
    main.replaceChildren(
      h("h1", {}, "Experiments"),
      rows.length ? h("table", { class: "grid", id: "experiments" },
        h("thead", {}, h("tr", {}, ["experiment", "status", "current run", "host", "started", "jobs by state", "done"]
          .map((t) => h("th", {}, t)))),
        h("tbody", {}, rows)) : h("p", { class: "empty" }, "No experiments in this workspace yet."),
      h("p", {}, h("a", { href: "#/jobs" }, `All jobs of the workspace (${data.all_jobs})`)));
  }
}

class JobsView {
  constructor(experiment, run = null) {
    this.experiment = experiment;
    this.run = run;
    this.filter = "";
    this.sort = "";
    this.reverse = false;
    this.offset = 0;
    this.compare = false;
    this.compareAll = false;
    this.built = false;
  }

  query(extra = {}) {
    const q = new URLSearchParams({ filter: this.filter, offset: this.offset, limit: PAGE_SIZE, ...extra });
    if (this.experiment) q.set("experiment", this.experiment);
    if (this.run) q.set("run", this.run);
    if (this.sort) q.set("sort", this.sort);
    if (this.reverse) q.set("reverse", "1");
    return q.toString();
  }

  build() {
    const title = this.experiment ? `Jobs of ${this.experiment}` : "All jobs";
    this.runNote = h("span", { id: "run-note", class: "aside" });
    this.input = h("input", { id: "filter", type: "search", placeholder: 'filter, e.g. @state = "running" and model ~ "bm"',
      spellcheck: "false", autocomplete: "off", onkeydown: (e) => { if (e.key === "Enter") this.applyFilter(); } });
    this.input.addEventListener("input", () => {
      clearTimeout(this.typing);
      this.typing = setTimeout(() => this.applyFilter(), 400);
    });
    this.filterError = h("div", { id: "filter-error", class: "filter-error", role: "alert", hidden: true });
    this.count = h("span", { id: "count" });
    this.prev = h("button", { onclick: () => this.move(-PAGE_SIZE) }, "◀ previous");
    this.next = h("button", { onclick: () => this.move(PAGE_SIZE) }, "next ▶");
    this.compareButton = h("button", { id: "compare-toggle", onclick: () => { this.compare = !this.compare; this.render(); } });
    this.table = h("div", { id: "jobs-area" });
    main.replaceChildren(
      h("h1", {}, title, " ", this.runNote, " ", this.experiment ? h("a", { class: "aside", href: `#/experiments/${encodeURIComponent(this.experiment)}/runs` }, "runs") : ""),
      h("div", { class: "toolbar" }, this.input, h("button", { onclick: () => this.applyFilter() }, "filter"),
        this.compareButton, h("span", { class: "pager" }, this.prev, this.count, this.next)),
      this.filterError, this.table);
    this.built = true;
  }

  applyFilter() {
    clearTimeout(this.typing);
    if (this.input.value === this.filter) return;
    this.filter = this.input.value;
    this.offset = 0;
    this.render();
  }

  move(delta) {
    this.offset = Math.max(0, this.offset + delta);
    this.render();
  }

  setSort(sort) {
    if (this.sort === sort || (!this.sort && sort === this.defaultSort)) this.reverse = !this.reverse;
    else { this.sort = sort; this.reverse = false; }
    this.offset = 0;
    this.render();
  }

  showFilterError(error) {
    const body = error.body || {};
    const text = this.filter;
    const col = body.column ? body.column - 1 : null;
    this.filterError.replaceChildren(
      h("div", {}, error.message),
      col !== null ? h("pre", { class: "caret" }, `${text}\n${" ".repeat(col)}^`) : "");
    this.filterError.hidden = false;
    this.input.classList.add("invalid");
  }

  async render() {
    if (!this.built) this.build();
    if (this.run) {
      setCrumbs(h("a", { href: "#/" }, "experiments"),
        h("a", { href: `#/experiments/${encodeURIComponent(this.experiment)}` }, this.experiment),
        h("a", { href: `#/experiments/${encodeURIComponent(this.experiment)}/runs` }, "runs"), h("span", {}, this.run));
    } else {
      setCrumbs(h("a", { href: "#/" }, "experiments"), h("span", {}, this.experiment || "all jobs"));
    }
    this.compareButton.textContent = this.compare ? "jobs table" : "compare";
    let data;
    try {
      data = await api(`/api/${this.compare ? "compare" : "jobs"}?${this.query(this.compare && this.compareAll ? { all: "1" } : {})}`);
    } catch (error) {
      if (error.status === 400 && error.body && "column" in error.body) { this.showFilterError(error); return; }
      throw error;
    }
    this.filterError.hidden = true;
    this.input.classList.remove("invalid");
    showProblems(data.problems);
    // Which run the jobs are of (said loudly when it is not the current one).
    if (data.run) this.runNote.textContent = data.current_run ? `run ${data.run}` : `run ${data.run} (not the current run)`;
    const shown = (data.rows || data.jobs).length;
    const last = Math.min(data.count, data.offset + shown);
    this.count.textContent = data.count ? `${data.offset + 1}–${last} of ${data.count}` : "no jobs";
    this.prev.disabled = data.offset === 0;
    this.next.disabled = last >= data.count;
    if (this.compare) { this.renderCompare(data); return; }
    this.defaultSort = data.sorts[0];
    const sort = data.sort;
    if (data.offset >= data.count && data.count > 0 && this.offset > 0) { this.offset = Math.max(0, data.count - PAGE_SIZE); return this.render(); }
    const header = (label, key) => {
      if (!key || !data.sorts.includes(key)) return h("th", {}, label);
      const active = sort === key;
      return h("th", { class: `sortable${active ? " active" : ""}`, "data-sort": key, onclick: () => this.setSort(key),
        title: `sort by ${key}` }, label, active ? (this.reverse ? " ▲" : " ▼") : "");
    };
    const order = data.sorts.includes("submitted");
    this.table.replaceChildren(h("table", { class: "grid", id: "jobs" },
      h("thead", {}, h("tr", {}, order ? header("#", "submitted") : "", header("state", "state"), header("job", "task"),
        h("th", {}, "tags"), h("th", {}, "progress"), h("th", {}, "started"), h("th", {}, "duration"),
        header("last change", "updated"))),
      h("tbody", {}, data.rows.map((row, i) => h("tr", { "data-job": row.name },
        order ? h("td", { class: "num dim" }, data.offset + i + 1) : "",
        h("td", {}, badge(row.state, row.reason)),
        h("td", {}, h("a", { href: jobHref(row.task_id, row.identifier), class: "mono" }, row.name)),
        h("td", { class: "tags" }, tagsText(row.tags)),
        h("td", {}, progressBar(row.progress, row.progress_desc)),
        h("td", {}, time(row.started_at)),
        h("td", {}, durationCell(row.started_at, row.ended_at)),
        h("td", { class: "dim" }, time(row.updated_at)))))));
  }

  renderCompare(data) {
    const toggle = h("label", {}, h("input", { type: "checkbox", id: "compare-all", checked: this.compareAll,
      onchange: (e) => { this.compareAll = e.target.checked; this.render(); } }), " show also the values all jobs share");
    const note = data.hidden && !this.compareAll ? h("span", { class: "dim" }, ` (${data.hidden} identical columns hidden)`) : "";
    this.table.replaceChildren(h("div", { class: "toolbar" }, toggle, note),
      data.jobs.length ? h("div", { class: "scroll" }, h("table", { class: "grid", id: "compare" },
        h("thead", {}, h("tr", {}, h("th", {}, "job"), data.columns.map((c) =>
          h("th", { class: `col-${c.kind}`, title: c.kind }, c.name, h("span", { class: "kind" }, c.kind))))),
        h("tbody", {}, data.jobs.map((job, i) => h("tr", {},
          h("td", {}, badge(job.state, job.reason), " ", h("a", { href: jobHref(job.task_id, job.identifier), class: "mono" }, job.name)),
          data.columns.map((c) => h("td", {}, c.values[i] === null ? "" : (typeof c.values[i] === "string" ? c.values[i] : JSON.stringify(c.values[i]))))))))) :
        h("p", { class: "empty" }, "no jobs"));
  }
}

class RunsView {
  constructor(experiment) { this.experiment = experiment; }

  async render() {
    setCrumbs(h("a", { href: "#/" }, "experiments"),
      h("a", { href: `#/experiments/${encodeURIComponent(this.experiment)}` }, this.experiment), h("span", {}, "runs"));
    const data = await api(`/api/experiments/${encodeURIComponent(this.experiment)}/runs`);
    showProblems(data.problems);
    main.replaceChildren(h("h1", {}, `Runs of ${this.experiment}`),
      h("table", { class: "grid", id: "runs" },
        h("thead", {}, h("tr", {}, ["run", "status", "host", "started", "ended", "duration", "done", "errors", "jobs", "tags"]
          .map((t) => h("th", {}, t)))),
        h("tbody", {}, data.runs.map((run) => h("tr", { class: run.current ? "current" : "", "data-run": run.run_id },
          h("td", { class: "mono" }, h("a", { href: run.current ? `#/experiments/${encodeURIComponent(this.experiment)}` :
            `#/experiments/${encodeURIComponent(this.experiment)}/runs/${encodeURIComponent(run.run_id)}`,
          title: "the jobs of this run" }, run.run_id), run.current ? " (current)" : ""),
          h("td", {}, run.status ? h("span", { class: `run run-${run.status}` }, run.status) : "?"),
          h("td", {}, run.host || ""), h("td", {}, time(run.started_at)), h("td", {}, time(run.ended_at)),
          h("td", {}, run.started_at ? duration((run.ended_at ?? Date.now() / 1000) - run.started_at) : ""),
          h("td", { class: "num" }, run.done), h("td", { class: "num" }, run.errors), h("td", { class: "num" }, run.jobs),
          h("td", {}, run.tags.join(", ")))))));
  }
}

class JobView {
  constructor(task, id) {
    this.task = task;
    this.id = id;
    this.stream = "stderr";
    this.offset = null;
    this.built = false;
  }

  base() { return `/api/jobs/${encodeURIComponent(this.task)}/${encodeURIComponent(this.id)}`; }

  build(job) {
    this.header = h("div", { id: "job-header" });
    this.info = h("div", { id: "job-info" });
    this.log = h("pre", { id: "log", class: "log" });
    this.logNote = h("div", { class: "dim", id: "log-note" });
    const tab = (name) => h("button", { class: `tab${this.stream === name ? " active" : ""}`, "data-stream": name,
      onclick: () => { this.stream = name; this.offset = null; this.log.textContent = "";
        for (const b of this.tabs.children) b.classList.toggle("active", b.dataset.stream === name);
        this.readLog(); } }, name);
    this.tabs = h("div", { class: "tabs" }, tab("stderr"), tab("stdout"));
    main.replaceChildren(this.header, this.info, h("h2", {}, "Log"), this.tabs, this.logNote, this.log);
    this.built = true;
  }

  async kill(job) {
    if (!window.confirm(`Kill job ${job.name}?\n\n${job.task_id}/${job.identifier}`)) return;
    const status = document.getElementById("kill-status");
    status.textContent = "killing...";
    try {
      const outcome = await api(`${this.base()}/kill`, { method: "POST" });
      status.textContent = `${outcome.result}${outcome.detail ? `: ${outcome.detail}` : ""}`;
    } catch (error) {
      status.textContent = error.message;
    }
    this.render();
  }

  async render() {
    const job = await api(this.base());
    if (!this.built) this.build(job);
    setCrumbs(h("a", { href: "#/" }, "experiments"), h("span", { class: "mono" }, job.name));
    showProblems(job.problems);
    const status = document.getElementById("kill-status");
    this.header.replaceChildren(
      h("h1", {}, badge(job.state, job.reason), " ", h("span", { class: "mono" }, job.name)),
      h("div", { class: "toolbar" },
        job.killable ? h("button", { id: "kill", class: "danger", onclick: () => this.kill(job) }, "kill") : "",
        h("span", { id: "kill-status" }, status ? status.textContent : "")));
    const deps = job.dependencies.length ? h("ul", { class: "deps" }, job.dependencies.map((d) => h("li", {}, badge(d.state),
      " ", d.task_id ? h("a", { href: jobHref(d.task_id, d.identifier), class: "mono" }, d.name) : h("span", { class: "mono" }, d.name))))
      : h("span", { class: "dim" }, "none");
    this.info.replaceChildren(h("table", { class: "facts" }, h("tbody", {},
      h("tr", {}, h("th", {}, "identifier"), h("td", { class: "mono" }, `${job.task_id}/${job.identifier}`)),
      h("tr", {}, h("th", {}, "folder"), h("td", { class: "mono", id: "folder" }, job.folder)),
      h("tr", {}, h("th", {}, "tags"), h("td", {}, tagsText(job.tags))),
      h("tr", {}, h("th", {}, "progress"), h("td", {}, progressBar(job.progress))),
      h("tr", {}, h("th", {}, "started"), h("td", {}, time(job.started_at))),
      h("tr", {}, h("th", {}, "duration"), h("td", {}, durationCell(job.started_at, job.ended_at))),
      job.reason ? h("tr", {}, h("th", {}, "reason"), h("td", {}, job.reason)) : "",
      job.exit_code !== null ? h("tr", {}, h("th", {}, "exit code"), h("td", {}, job.exit_code)) : "",
      h("tr", {}, h("th", {}, "dependencies"), h("td", {}, deps)))),
      h("h2", {}, "Parameters"),
      h("table", { class: "grid params", id: "params" }, h("tbody", {}, job.params.map((p) =>
        h("tr", {}, h("td", { class: "mono" }, p.name), h("td", { class: "mono" }, p.value ?? ""))))));
    await this.readLog();
  }

  // One read at a time (the timer and the pushes both ask), each from where the last one ended.
  readLog() {
    if (!this.reading) this.reading = this.readLogOnce().finally(() => { this.reading = null; });
    return this.reading;
  }

  async readLogOnce() {
    const stream = this.stream;
    const q = new URLSearchParams({ stream });
    if (this.offset !== null) q.set("offset", this.offset);
    const data = await api(`${this.base()}/log?${q}`);
    if (stream !== this.stream) return;  // switched to the other stream meanwhile
    if (data.skipped && this.offset !== null) this.log.append("\n[... skipped ...]\n");
    if (data.text) {
      const atBottom = this.log.scrollTop + this.log.clientHeight >= this.log.scrollHeight - 4;
      this.log.append(data.text);
      // Keeps the last 512 kB on screen.
      if (this.log.textContent.length > 512 * 1024) this.log.textContent = this.log.textContent.slice(-256 * 1024);
      if (atBottom) this.log.scrollTop = this.log.scrollHeight;
    }
    this.offset = data.offset;
    this.logNote.textContent = data.problem || data.path;
  }

  // The log grows without the index changing: it is read every second while the page is open.
  tick() { if (this.built) this.readLog().catch(() => {}); }
}

// --- routing and live updates -----------------------------------------------------------------

let view = null;
let rendering = false;
let again = false;

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "experiments" && parts[1] && parts[2] === "runs" && parts[3]) return new JobsView(parts[1], parts[3]);
  if (parts[0] === "experiments" && parts[1] && parts[2] === "runs") return new RunsView(parts[1]);
  if (parts[0] === "experiments" && parts[1]) return new JobsView(parts[1]);
  if (parts[0] === "jobs") return new JobsView(null);
  if (parts[0] === "job" && parts.length >= 3) return new JobView(parts[1], parts[2]);
  return new ExperimentsView();
}

// Renders the current view; a render asked for meanwhile runs once after it (never two at once).
async function render() {
  if (rendering) { again = true; return; }
  rendering = true;
  try {
    await view.render();
  } catch (error) {
    main.replaceChildren(errorBox(error));
    view.built = false;
  } finally {
    rendering = false;
    if (again) { again = false; render(); }
  }
}

window.addEventListener("hashchange", () => { view = route(); render(); });

function connect() {
  const live = document.getElementById("live");
  const events = new EventSource("/api/events");
  events.addEventListener("hello", () => { live.textContent = "live"; live.className = "live on"; render(); });
  events.addEventListener("changed", () => render());
  events.onerror = () => { live.textContent = "disconnected"; live.className = "live off"; };
}

setInterval(() => {
  const now = Date.now() / 1000;
  for (const span of document.querySelectorAll(".duration[data-running]")) {
    span.textContent = duration(now - Number(span.dataset.start));
  }
  if (view && view.tick) view.tick();
}, 1000);

view = route();
render();
connect();
