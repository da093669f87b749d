// The plugins page: every installed plugin with what it declares, its
// install history from the journal, the operations on it (each shown only
// to a user holding its permission, each asking first and saying what
// happens to the plugin's data) and upload-and-install of a package, whose
// upload percent and then journal steps appear live as the host writes
// them.

import { del, get, post, upload } from "../api.js";
import { live } from "../live.js";
import { NEEDS } from "../session.js";
import { badge, confirmDialog, empty, errorBox, h, pending, showError, stateTone, when } from "../ui.js";

// What each journal step means (host/src/install/journal.rs): for an
// install, upgrade or rollback, and for the operations that bring no new
// code (enable, disable, remove).
const CHANGE_TITLES = {
  started: "Accepted",
  committed: "Committed the change",
  swapped: "Updated what serves",
  done: "Recorded in config.json",
  failed: "Failed",
  recovered: "Settled after a restart",
};
const STEP_TITLES = {
  started: "Checked manifest, host API and dependencies",
  unpacked: "Unpacked and checked the package",
  compiled: "Compiled the component",
  placed: "Placed the files",
  committed: "Ran migrations and committed",
  swapped: "Now serving the new version",
  done: "Recorded in config.json",
  failed: "Failed",
  recovered: "Settled after a restart",
};

export function pluginsPage(root, session) {
  const tableSlot = h("div", { id: "plugins-table" }, h("p", { class: "muted" }, "Loading plugins…"));
  const historySlot = h("div", { id: "history" });
  const operation = h("div", { id: "operation", class: "operation", "aria-live": "polite", hidden: true });
  let watching = null; // op ids this page started, or null for "the next one"
  let historyFilter = "";

  const installCard = session.can(NEEDS.install) ? installForm() : null;
  root.append(
    h("div", { class: "page-head" },
      h("h1", {}, "Plugins"),
      h("p", { class: "muted" }, "What this host runs, what each plugin declares, and what happened to it.")),
    ...(installCard ? [installCard] : []), operation,
    h("h2", {}, "Installed"), tableSlot,
    h("div", { class: "section-head" }, h("h2", {}, "History"),
      h("label", { class: "inline" }, "Plugin ",
        h("select", { id: "history-filter", onchange: (e) => { historyFilter = e.target.value; loadHistory(); } },
          h("option", { value: "" }, "all")))),
    historySlot);

  function installForm() {
    const file = h("input", { type: "file", id: "package-file", name: "package", accept: ".zip,application/zip", required: true, "aria-describedby": "package-hint" });
    const button = h("button", { type: "submit", class: "primary", id: "install-button" }, "Install");
    const progress = h("progress", { id: "upload-progress", max: 100, value: 0, hidden: true, "aria-label": "Upload progress" });
    const percent = h("span", { id: "upload-percent", class: "muted" });
    const errors = h("div", { class: "field-error", id: "install-error" });
    const form = h("form", { class: "card install", id: "install-form" },
      h("h2", {}, "Install or upgrade"),
      h("label", { for: "package-file" }, "Package (.zip)"),
      h("div", { class: "row" }, file, button, progress, percent),
      h("p", { class: "hint", id: "package-hint" }, "A plugin package. A newer version of an installed plugin upgrades it; the running version keeps serving until the new one is ready."),
      errors);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      errors.replaceChildren();
      const chosen = file.files[0];
      if (!chosen) { showError(errors, { message: "Choose a package file first." }); file.focus(); return; }
      watching = [];
      operation.hidden = false;
      operation.replaceChildren(h("h3", {}, `Installing ${chosen.name}`), h("ol", { class: "steps", id: "steps" }));
      progress.hidden = false;
      progress.value = 0;
      await pending(button, "Uploading…", async () => {
        try {
          const report = await upload("/api/admin/plugins?mode=auto", chosen, (fraction) => {
            progress.value = Math.round(fraction * 100);
            percent.textContent = `uploaded ${Math.round(fraction * 100)}%`;
            if (fraction >= 1) { button.textContent = "Installing…"; percent.textContent = "uploaded 100%, installing…"; }
          });
          const change = report.from_version ? `${report.from_version} → ${report.to_version}` : report.to_version;
          operation.append(h("p", { class: "outcome ok", id: "outcome" }, `${report.plugin} ${report.operation}: ${change}. Done.`));
          form.reset();
        } catch (error) {
          operation.append(h("p", { class: "outcome bad", id: "outcome" }, "The package was not installed; nothing changed."));
          showError(errors, error);
        } finally {
          progress.hidden = true;
          percent.textContent = "";
          refresh();
        }
      });
    });
    return form;
  }

  // A journal row arrived: show it under the operation this page watches.
  function onJournal(e) {
    const entry = e.detail;
    if (watching && watching.length === 0) watching.push(entry.op_id);
    if (watching && watching.includes(entry.op_id)) {
      if (entry.step === "started") {
        const change = entry.from_version && entry.to_version && entry.from_version !== entry.to_version
          ? `${entry.from_version} → ${entry.to_version}` : entry.to_version || entry.from_version || "";
        operation.querySelector("h3").textContent = `${entry.operation[0].toUpperCase()}${entry.operation.slice(1)} ${entry.plugin} ${change}`;
      }
      const list = operation.querySelector("#steps");
      list?.append(h("li", { class: `step ${entry.step}`, dataset: { step: entry.step } },
        h("span", { class: "step-name" }, entry.step),
        h("span", {}, (["install", "upgrade", "rollback"].includes(entry.operation) ? STEP_TITLES : CHANGE_TITLES)[entry.step] || entry.step),
        entry.message && entry.step !== "started" ? h("span", { class: "error" }, ` ${entry.message}`) : null));
    }
    if (["done", "failed", "recovered"].includes(entry.step)) refresh();
  }
  live.addEventListener("journal", onJournal);
  live.addEventListener("resync", refresh);

  // Runs a plugin operation from a row's button, after asking.
  async function operate(button, plugin, { title, body, confirm, danger, label, run }) {
    const answer = await confirmDialog({ title, body, confirm, danger });
    if (!answer) return;
    const slot = button.closest("tr").nextElementSibling?.querySelector(".row-error");
    slot?.replaceChildren();
    watching = [];
    operation.hidden = false;
    operation.replaceChildren(h("h3", {}, `${confirm}: ${plugin.name}`), h("ol", { class: "steps", id: "steps" }));
    await pending(button, label, async () => {
      try {
        await run(answer);
        operation.append(h("p", { class: "outcome ok", id: "outcome" }, `${plugin.name}: ${confirm.toLowerCase()} done.`));
      } catch (error) {
        operation.append(h("p", { class: "outcome bad", id: "outcome" }, `${plugin.name}: ${confirm.toLowerCase()} failed; nothing changed.`));
        if (slot) showError(slot, error);
        else operation.append(errorBox(error));
      }
    });
    refresh();
  }

  function actions(p) {
    const enc = encodeURIComponent(p.name);
    const buttons = [];
    if (p.state === "enabled" && session.can(NEEDS.disable)) {
      buttons.push(h("button", { type: "button", class: "secondary small", dataset: { action: "disable" }, onclick: (e) => operate(e.target, p, {
        title: `Disable ${p.name}?`, confirm: "Disable", label: "Disabling…",
        body: [h("p", {}, `Its pages, API and tasks stop until it is enabled again. Its data is kept.`)],
        run: () => post(`/api/admin/plugins/${enc}/disable`) }) }, "Disable"));
    }
    if (p.state === "disabled" && session.can(NEEDS.enable)) {
      buttons.push(h("button", { type: "button", class: "secondary small", dataset: { action: "enable" }, onclick: (e) => operate(e.target, p, {
        title: `Enable ${p.name}?`, confirm: "Enable", label: "Enabling…",
        body: [h("p", {}, `It serves its pages, API and tasks again, with the data it had.`)],
        run: () => post(`/api/admin/plugins/${enc}/enable`) }) }, "Enable"));
    }
    if (p.previous_version && session.can(NEEDS.rollback)) {
      buttons.push(h("button", { type: "button", class: "secondary small", dataset: { action: "rollback" }, onclick: (e) => operate(e.target, p, {
        title: `Roll ${p.name} back to ${p.previous_version}?`, confirm: "Roll back", label: "Rolling back…",
        body: [h("p", {}, `Version ${p.previous_version} serves again instead of ${p.version}. Its data is kept: the tables stay as ${p.version} left them (no down-migrations run).`)],
        run: () => post(`/api/admin/plugins/${enc}/rollback`) }) }, "Roll back"));
    }
    if (session.can(NEEDS.remove)) {
      buttons.push(h("button", { type: "button", class: "danger small", dataset: { action: "remove" }, onclick: (e) => operate(e.target, p, {
        title: `Remove ${p.name}?`, confirm: "Remove", danger: true, label: "Removing…",
        body: [
          h("p", {}, `Its routes, menus, permissions and tasks go. Its tables and their data are kept, so installing it again finds them.`),
          h("label", { class: "check" }, h("input", { type: "checkbox", name: "drop_data", value: "yes" }),
            ` Also delete its data: drop every ${p.name} table. This cannot be undone.`)],
        run: (answer) => del(`/api/admin/plugins/${enc}${answer.drop_data ? "?drop_data=true" : ""}`) }) }, "Remove"));
    }
    return buttons.length ? buttons : [h("span", { class: "muted small" }, "view only")];
  }

  async function loadTable() {
    try {
      const installed = await get("/api/admin/plugins");
      const details = await Promise.all(installed.map((p) => get(`/api/admin/plugins/${encodeURIComponent(p.name)}`)));
      const filter = root.querySelector("#history-filter");
      filter.replaceChildren(h("option", { value: "" }, "all"), ...installed.map((p) => h("option", { value: p.name, selected: p.name === historyFilter }, p.name)));
      if (installed.length === 0) {
        tableSlot.replaceChildren(empty("No plugins installed yet.", session.can(NEEDS.install) ? "Install one from a package above." : "Ask an administrator to install one."));
        return;
      }
      const rows = details.flatMap((p) => {
        const m = p.manifest;
        const list = (items) => (items.length ? items.join(", ") : "—");
        const kind = m.kind === "static" ? "static assets" : m.world === "wasi-http" ? "wasi:http component" : "plugin";
        return [
          h("tr", { dataset: { plugin: p.name } },
            h("th", { scope: "row" }, h("div", { class: "name" }, p.name),
              m.description ? h("div", { class: "muted small" }, m.description) : null,
              m.forked_from ? h("div", { class: "small fork" }, `fork of ${m.forked_from}`) : null),
            h("td", { class: "version", dataset: { label: "Version" } }, p.version),
            h("td", { class: "previous", dataset: { label: "Previous" } }, p.previous_version || "—"),
            h("td", { dataset: { label: "Kind and state" } }, kind, h("div", {}, badge(p.state, stateTone(p.state)))),
            h("td", { dataset: { label: "Mounted at" } }, m.kind === "static" ? "—" : p.state === "enabled" ? h("a", { href: `#${p.mount_path}` }, p.mount_path) : p.mount_path),
            h("td", { class: "small declares", dataset: { label: "Declares" } },
              h("div", {}, h("span", { class: "muted" }, "Menus: "), list((m.menus || []).map((x) => x.title))),
              h("div", {}, h("span", { class: "muted" }, "Permissions: "), list((m.permissions || []).map((x) => x.code))),
              h("div", {}, h("span", { class: "muted" }, "Tasks: "), list((m.tasks || []).map((t) => `${t.name} (${t.cron})`)),
                (m.tasks || []).length && session.can(NEEDS.viewTasks) ? [" ", h("a", { href: "#/tasks" }, "runs")] : null),
              (m.settings || []).length
                ? h("div", {}, h("span", { class: "muted" }, "Settings: "), list(m.settings.map((x) => x.key)), " ", h("a", { href: "#/settings" }, "edit"))
                : null),
            h("td", { class: "actions" }, actions(p))),
          h("tr", { class: "error-row" }, h("td", { colspan: 7 }, h("div", { class: "row-error" }))),
        ];
      });
      tableSlot.replaceChildren(h("div", { class: "table-wrap" }, h("table", { class: "plugins" },
        h("thead", {}, h("tr", {}, ["Plugin", "Version", "Previous", "Kind and state", "Mounted at", "Declares", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows))));
    } catch (error) {
      tableSlot.replaceChildren(errorBox(error));
    }
  }

  async function loadHistory() {
    try {
      const q = historyFilter ? `&plugin=${encodeURIComponent(historyFilter)}` : "";
      const rows = await get(`/api/admin/journal?limit=300${q}`);
      const ops = new Map();
      for (const r of rows.slice().reverse()) {
        if (!ops.has(r.op_id)) ops.set(r.op_id, []);
        ops.get(r.op_id).push(r);
      }
      if (ops.size === 0) { historySlot.replaceChildren(empty("No operations yet.")); return; }
      const items = [...ops.values()].reverse().map((steps) => {
        const first = steps[0];
        const last = steps[steps.length - 1];
        const outcome = last.step === "done" ? "success" : last.step === "failed" ? "failed" : last.step === "recovered" ? "recovered" : "running";
        const change = first.from_version && first.to_version && first.from_version !== first.to_version
          ? `${first.from_version} → ${first.to_version}` : (first.to_version || first.from_version || "");
        const failure = steps.find((s) => s.step === "failed" || s.step === "recovered");
        return h("li", { class: "op", dataset: { op: first.op_id } },
          h("div", { class: "op-head" },
            badge(outcome, stateTone(outcome === "success" ? "done" : outcome === "running" ? "applying" : "failed")),
            h("strong", {}, ` ${first.plugin} `), h("span", {}, `${first.operation} ${change}`),
            h("span", { class: "muted small" }, ` ${when(first.at)}`)),
          h("div", { class: "muted small" }, steps.map((s) => s.step).join(" → ")),
          failure?.message ? h("div", { class: "error small" }, failure.message) : null);
      });
      historySlot.replaceChildren(h("ul", { class: "history", role: "list" }, items));
    } catch (error) {
      historySlot.replaceChildren(errorBox(error));
    }
  }

  function refresh() { loadTable(); loadHistory(); }
  refresh();
  return () => {
    live.removeEventListener("journal", onJournal);
    live.removeEventListener("resync", refresh);
  };
}
