// The audit page: who did what, when, from where, newest first, filtered
// by user, action and time range (the host filters: GET /api/admin/audit
// with user, action, since, until) and paged by the id of the last row.

import { get } from "../api.js";
import { badge, empty, errorBox, h, pending, when } from "../ui.js";

const PAGE_SIZE = 50;

function outcomeTone(outcome) {
  return outcome === "ok" ? "ok" : outcome === "refused" ? "warn" : "bad";
}

export function auditPage(root) {
  const results = h("div", { id: "audit-results" });
  const pager = h("div", { class: "pager", id: "audit-pager" });
  const errors = h("div", { class: "field-error", id: "audit-error" });
  // `before` of each page shown so far: the first page has none.
  let pages = [undefined];
  let filters = {};
  // The actions seen so far, as suggestions: the field takes any action.
  const seenActions = new Set();
  const actionList = h("datalist", { id: "audit-actions" });

  const field = (id, label, input) => h("div", { class: "field" }, h("label", { for: id }, label), input);
  const apply = h("button", { type: "submit", class: "primary", id: "audit-apply" }, "Apply filters");
  const clear = h("button", { type: "reset", class: "secondary", id: "audit-clear" }, "Clear");
  const form = h("form", { class: "card filters", id: "audit-filters", role: "search" },
    field("audit-user", "User", h("input", { id: "audit-user", name: "user", placeholder: "login", autocomplete: "off" })),
    field("audit-action", "Action", h("input", { id: "audit-action", name: "action", list: "audit-actions", placeholder: "e.g. auth.sign_in", autocomplete: "off" })),
    actionList,
    field("audit-since", "From", h("input", { id: "audit-since", name: "since", type: "datetime-local" })),
    field("audit-until", "Until", h("input", { id: "audit-until", name: "until", type: "datetime-local" })),
    h("div", { class: "form-actions" }, apply, clear),
    errors);

  root.append(
    h("div", { class: "page-head" },
      h("h1", {}, "Audit log"),
      h("p", { class: "muted" }, "Every sign-in, user, role and token change, service-token call and plugin operation, newest first.")),
    form, results, pager);

  function readFilters() {
    const data = new FormData(form);
    const out = {};
    for (const key of ["user", "action"]) {
      const v = data.get(key).trim();
      if (v) out[key] = v;
    }
    for (const key of ["since", "until"]) {
      const v = data.get(key);
      if (v) out[key] = String(new Date(v).getTime());
    }
    return out;
  }

  async function load(button, label) {
    const before = pages[pages.length - 1];
    const query = new URLSearchParams({ ...filters, limit: String(PAGE_SIZE), ...(before ? { before: String(before) } : {}) });
    const work = async () => {
      errors.replaceChildren();
      try {
        const page = await get(`/api/admin/audit?${query}`);
        draw(page);
      } catch (error) {
        // Beside the filters: a bad filter is what the host refuses.
        errors.replaceChildren(errorBox(error));
      }
    };
    if (button) await pending(button, label, work);
    else await work();
  }

  function draw(page) {
    const before = seenActions.size;
    for (const e of page.entries) seenActions.add(e.action);
    if (seenActions.size !== before) actionList.replaceChildren(...[...seenActions].sort().map((a) => h("option", { value: a })));
    if (page.entries.length === 0) {
      const filtered = Object.keys(filters).length > 0;
      results.replaceChildren(empty(filtered ? "Nothing matches these filters." : "Nothing recorded yet.",
        filtered ? "Widen the time range or clear a filter." : null));
    } else {
      results.replaceChildren(h("div", { class: "table-wrap" }, h("table", { class: "audit cards-on-phone" },
        h("thead", {}, h("tr", {}, ["When", "Who", "Action", "Target", "Outcome", "From", "Detail"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, page.entries.map((e) => h("tr", { dataset: { audit: e.id } },
          h("td", { class: "small nowrap", dataset: { label: "When" } }, when(e.at)),
          h("td", { dataset: { label: "Who" } }, e.actor || h("span", { class: "muted" }, "anonymous"),
            ["token", "bootstrap"].includes(e.actor_kind) ? h("div", { class: "muted small nowrap" }, e.actor_kind === "token" ? "service token" : "bootstrap token") : null),
          h("td", { class: "mono small", dataset: { label: "Action" } }, e.action),
          h("td", { class: "small wrap", dataset: { label: "Target" } }, e.target || "—"),
          h("td", { dataset: { label: "Outcome" } }, badge(e.outcome, outcomeTone(e.outcome))),
          h("td", { class: "small mono", dataset: { label: "From" } }, e.ip || "—"),
          h("td", { class: "small wrap", dataset: { label: "Detail" } }, e.detail || "—")))))));
    }
    const newer = h("button", { type: "button", class: "secondary", id: "audit-newer", disabled: pages.length === 1,
      onclick: (ev) => { pages.pop(); load(ev.currentTarget, "Loading…"); } }, "← Newer");
    const older = h("button", { type: "button", class: "secondary", id: "audit-older", disabled: !page.next_before,
      onclick: (ev) => { pages.push(page.next_before); load(ev.currentTarget, "Loading…"); } }, "Older →");
    pager.replaceChildren(newer, h("span", { class: "muted small" }, `page ${pages.length}`), older);
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    filters = readFilters();
    pages = [undefined];
    load(apply, "Filtering…");
  });
  form.addEventListener("reset", () => {
    filters = {};
    pages = [undefined];
    // After the browser has emptied the fields.
    setTimeout(() => load(clear, "Clearing…"));
  });

  results.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  load();
}
