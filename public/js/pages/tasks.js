// The tasks page: every task the serving plugins declare (schedule, next
// run, paused, last outcome) and, opened per task, its runs newest first
// with outcome, error, host and duration, paged. Run now, pause and resume
// show only with tasks.manage. The live feed carries no task events, so
// the page polls GET /api/admin/tasks (and each open history's first page)
// every POLL_MS while it is shown; rows are updated in place, so a poll
// never takes the focus or a pending button away.

import { get, post } from "../api.js";
import { NEEDS } from "../session.js";
import { badge, empty, errorBox, h, pending, when } from "../ui.js";

const POLL_MS = 2000;
const PAGE = 10;

const key = (t) => `${t.plugin}/${t.task}`;
const path = (t) => `/api/admin/tasks/${encodeURIComponent(t.plugin)}/${encodeURIComponent(t.task)}`;

function outcomeTone(outcome) {
  switch (outcome) {
    case "ok": return "ok";
    case "running": case "skipped_overlap": case "cancelled": case "interrupted": return "warn";
    case "failed": case "timed_out": return "bad";
    default: return "";
  }
}

function duration(run) {
  if (!run.finished_at) return run.outcome === "running" ? "running…" : "—";
  const ms = run.finished_at - run.started_at;
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

function stateBadge(t) {
  if (t.paused) return badge("paused", "warn");
  if (t.running) return badge("running", "ok");
  return badge("scheduled", "");
}

export function tasksPage(root, session) {
  const canManage = session.can(NEEDS.manageTasks);
  const listSlot = h("div", { id: "tasks" }, h("p", { class: "muted" }, "Loading tasks…"));
  const pollError = h("div", { id: "tasks-error" });
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Tasks"),
      h("p", { class: "muted" }, "Scheduled jobs the plugins declare, each tick run on one host and recorded. This page refreshes every few seconds.")),
    pollError, listSlot);

  const rows = new Map(); // key → { task, row, cells, actions, history }
  let tbody = null;
  let stopped = false;
  let timer = null;

  function runRow(run) {
    return h("tr", { dataset: { run: String(run.id), outcome: run.outcome } },
      h("td", { "data-label": "Started" }, when(run.started_at)),
      h("td", { "data-label": "Outcome" }, badge(run.outcome.replace("_", " "), outcomeTone(run.outcome))),
      h("td", { "data-label": "Duration" }, duration(run)),
      h("td", { "data-label": "Host", class: "mono" }, run.host_id || "—"),
      h("td", { "data-label": "Version", class: "mono" }, run.version),
      h("td", { "data-label": "Error", class: run.message ? "error run-error" : "muted" }, run.message || "—"));
  }

  // One task's history: the newest page kept fresh by the poll, older
  // pages added on request.
  function historyPanel(entry) {
    const body = h("tbody");
    const errors = h("div", { class: "history-error" });
    const older = h("button", { type: "button", class: "secondary small", hidden: true }, "Show older runs");
    const table = h("div", { class: "table-wrap" }, h("table", { class: "runs" },
      h("caption", { class: "sr-only" }, `Runs of ${entry.task.title}`),
      h("thead", {}, h("tr", {}, ["Started", "Outcome", "Duration", "Host", "Version", "Error"].map((t) => h("th", { scope: "col" }, t)))),
      body));
    const none = empty("No runs yet.", "Runs appear here at the next tick, or use Run now.");
    const panel = h("div", { class: "history", dataset: { history: key(entry.task) } }, table, none, errors, older);
    const runs = new Map(); // id → row, newest first in the table
    let nextBefore = null;

    function place(list) {
      for (const run of list) {
        const row = runRow(run);
        runs.get(run.id)?.replaceWith(row);
        runs.set(run.id, row);
      }
      // Newest first, whichever page a run came with.
      body.append(...[...runs.entries()].sort((a, b) => b[0] - a[0]).map(([, row]) => row));
      none.hidden = runs.size > 0;
      table.hidden = runs.size === 0;
    }

    async function refresh() {
      try {
        const page = await get(`${path(entry.task)}/runs?limit=${PAGE}`);
        errors.replaceChildren();
        place(page.runs);
        if (nextBefore === null) { nextBefore = page.next_before ?? null; older.hidden = nextBefore === null; }
      } catch (e) { errors.replaceChildren(errorBox(e)); }
    }

    older.addEventListener("click", () => pending(older, "Loading…", async () => {
      try {
        const page = await get(`${path(entry.task)}/runs?limit=${PAGE}&before=${nextBefore}`);
        errors.replaceChildren();
        place(page.runs);
        nextBefore = page.next_before ?? null;
        older.hidden = nextBefore === null;
      } catch (e) { errors.replaceChildren(errorBox(e)); }
    }));
    return { panel, refresh };
  }

  function cellsFor(t) {
    const last = t.last_run;
    return [
      h("th", { scope: "row", "data-label": "Task" }, h("div", { class: "name" }, t.title || t.task),
        h("div", { class: "muted small mono" }, `${t.plugin} · ${t.task}`)),
      h("td", { "data-label": "Schedule" }, h("code", {}, t.cron),
        h("div", { class: "muted small" }, `timeout ${t.timeout_secs} s${t.concurrency === "queue" ? ", queued" : ""}`)),
      h("td", { "data-label": "Next run" }, t.paused ? h("span", { class: "muted" }, "paused") : when(t.next_run_at)),
      h("td", { "data-label": "State", class: "task-state" }, stateBadge(t)),
      h("td", { "data-label": "Last outcome", class: "last-outcome" }, last
        ? [badge(last.outcome.replace("_", " "), outcomeTone(last.outcome)), h("div", { class: "muted small" }, when(last.started_at))]
        : h("span", { class: "muted" }, "never run")),
    ];
  }

  function actionsFor(entry) {
    const errors = h("div", { class: "row-error" });
    const historyButton = h("button", { type: "button", class: "secondary small", "aria-expanded": "false", dataset: { action: "history" } }, "History");
    const cell = h("td", { class: "actions", "data-label": "Actions" });
    historyButton.addEventListener("click", () => {
      const open = historyButton.getAttribute("aria-expanded") === "true";
      historyButton.setAttribute("aria-expanded", String(!open));
      entry.historyRow.hidden = open;
      if (!open) entry.history.refresh();
    });
    const buttons = [historyButton];
    if (canManage) {
      const run = h("button", { type: "button", class: "primary small", dataset: { action: "run" } }, "Run now");
      run.addEventListener("click", () => pending(run, "Starting…", async () => {
        errors.replaceChildren();
        try {
          await post(`${path(entry.task)}/run`);
          if (entry.historyRow.hidden) historyButton.click();
          await refreshAll();
        } catch (e) { errors.replaceChildren(errorBox(e)); }
      }));
      const toggle = h("button", { type: "button", class: "secondary small", dataset: { action: "pause" } });
      toggle.addEventListener("click", () => {
        const resume = entry.task.paused;
        pending(toggle, resume ? "Resuming…" : "Pausing…", async () => {
          errors.replaceChildren();
          try {
            await post(`${path(entry.task)}/${resume ? "resume" : "pause"}`);
            await refreshAll();
          } catch (e) { errors.replaceChildren(errorBox(e)); }
        }).then(() => labelToggle(entry));
      });
      entry.toggle = toggle;
      buttons.push(run, toggle);
    }
    cell.append(...buttons, errors);
    return cell;
  }

  function update(entry, t) {
    entry.task = t;
    const cells = cellsFor(t);
    entry.cells.forEach((old, i) => old.replaceWith(cells[i]));
    entry.cells = cells;
    if (entry.toggle && !entry.toggle.disabled) labelToggle(entry);
    entry.row.dataset.paused = String(t.paused);
  }

  function labelToggle(entry) {
    entry.toggle.textContent = entry.task.paused ? "Resume" : "Pause";
    entry.toggle.dataset.action = entry.task.paused ? "resume" : "pause";
  }

  function draw(tasks) {
    if (tasks.length === 0) {
      rows.clear();
      tbody = null;
      listSlot.replaceChildren(empty("No plugin declares a task.", "Tasks come with plugins: a manifest's [[tasks]] appear here once it is installed and enabled."));
      return;
    }
    if (!tbody) {
      tbody = h("tbody");
      listSlot.replaceChildren(h("div", { class: "table-wrap" }, h("table", { class: "tasks stacked" },
        h("thead", {}, h("tr", {}, ["Task", "Schedule", "Next run", "State", "Last outcome", ""].map((t) => h("th", { scope: "col" }, t)))),
        tbody)));
    }
    const seen = new Set();
    for (const t of tasks) {
      const k = key(t);
      seen.add(k);
      let entry = rows.get(k);
      if (!entry) {
        entry = { task: t, cells: cellsFor(t) };
        entry.history = historyPanel(entry);
        entry.historyRow = h("tr", { class: "history-row", hidden: true }, h("td", { colspan: 6 }, entry.history.panel));
        entry.row = h("tr", { dataset: { task: k } }, ...entry.cells, actionsFor(entry));
        tbody.append(entry.row, entry.historyRow);
        rows.set(k, entry);
      }
      update(entry, t);
    }
    for (const [k, entry] of rows) {
      if (!seen.has(k)) { entry.row.remove(); entry.historyRow.remove(); rows.delete(k); }
    }
  }

  async function refreshAll() {
    try {
      const tasks = await get("/api/admin/tasks");
      pollError.replaceChildren();
      draw(tasks);
      await Promise.all([...rows.values()].filter((e) => !e.historyRow.hidden).map((e) => e.history.refresh()));
    } catch (e) {
      pollError.replaceChildren(errorBox(e));
      if (rows.size === 0) listSlot.replaceChildren();
    }
  }

  async function poll() {
    await refreshAll();
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }
  poll();
  return () => { stopped = true; clearTimeout(timer); };
}
