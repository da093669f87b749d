// The plugin settings page: for every installed plugin whose manifest
// declares [[settings]], a form drawn from that schema (text, a whole
// number, a check box, a list for an enum, a password field for a secret).
// A secret's value never comes to the page: its field says whether it is
// set, and only what is typed into it is sent. Saving sends the changed
// keys to PUT /api/admin/plugins/{name}/settings, which checks them with
// the host's start-up rule, writes config.json (a secret into the host's
// own file, which config.json names) and reloads the plugin; a
// refusal names the key, and its message goes beside that field.

import { get, request } from "../api.js";
import { NEEDS } from "../session.js";
import { badge, empty, errorBox, h, pending } from "../ui.js";

const TYPE_HINTS = {
  string: "Text",
  int: "A whole number",
  bool: "On or off",
  enum: "One of the listed values",
  secret: "Write-only: the value is never shown",
};

// The key a server message is about: `plugin goods: setting "page_size" …`.
function keyOf(message) {
  return /setting "([^"]+)"/.exec(message)?.[1];
}

function field(plugin, s, canEdit) {
  const id = `setting-${plugin}-${s.key}`;
  const hintId = `${id}-hint`;
  const error = h("div", { class: "field-error", id: `${id}-error` });
  const common = { id, name: s.key, disabled: !canEdit, "aria-describedby": `${hintId} ${id}-error`, dataset: { key: s.key, type: s.type } };
  let input;
  let read;
  let initial;
  switch (s.type) {
    case "bool":
      input = h("input", { ...common, type: "checkbox", checked: (s.value ?? s.default) === "true" });
      initial = input.checked;
      read = () => input.checked;
      break;
    case "enum": {
      const current = s.value ?? "";
      const options = s.values.map((v) => h("option", { value: v, selected: v === current }, v));
      if (!s.required && s.default === undefined) options.unshift(h("option", { value: "", selected: current === "" }, "— not set —"));
      input = h("select", common, options);
      initial = input.value;
      read = () => (input.value === "" ? null : input.value);
      break;
    }
    case "secret":
      input = h("input", { ...common, type: "password", autocomplete: "new-password",
        placeholder: s.set ? "Set: type to replace it" : "Not set" });
      initial = "";
      read = () => input.value;
      break;
    case "int":
      // Text, not type=number: what is typed reaches the host, whose rule
      // says what is wrong with it.
      input = h("input", { ...common, type: "text", inputmode: "numeric", value: s.value ?? "" });
      initial = input.value;
      read = () => (input.value === "" ? null : /^-?\d+$/.test(input.value.trim()) ? Number(input.value.trim()) : input.value);
      break;
    default:
      input = h("input", { ...common, type: "text", value: s.value ?? "" });
      initial = input.value;
      read = () => (input.value === "" ? null : input.value);
  }
  const changed = () => (s.type === "secret" ? input.value !== "" : (s.type === "bool" ? input.checked : input.value) !== initial);
  const title = h("span", {}, s.title || s.key, s.required ? h("span", { class: "required", title: "required" }, " *") : null);
  const status = s.type === "secret"
    ? badge(s.set ? "set" : "not set", s.set ? "ok" : (s.required ? "bad" : ""))
    : null;
  if (status) status.classList.add("secret-state");
  const hint = h("p", { class: "hint", id: hintId },
    TYPE_HINTS[s.type] || s.type,
    s.default !== undefined && s.type !== "secret" ? `; default ${s.default}` : "",
    h("span", { class: "mono" }, ` · ${s.key}`));
  const wrapper = s.type === "bool"
    ? h("div", { class: "field", dataset: { field: s.key } }, h("label", { class: "check", for: id }, input, title), hint, error)
    : h("div", { class: "field", dataset: { field: s.key } }, h("label", { for: id }, title, status ? " " : null, status), input, hint, error);
  return { key: s.key, wrapper, input, error, read, changed };
}

function pluginForm(row, canEdit, onSaved) {
  const fields = row.settings.map((s) => field(row.name, s, canEdit));
  const formError = h("div", { class: "form-error" });
  const notice = h("p", { class: "notice", role: "status" });
  const save = canEdit ? h("button", { type: "submit", class: "primary" }, "Save") : null;
  const form = h("form", { class: "card settings-form", id: `settings-${row.name}`, dataset: { plugin: row.name }, novalidate: true },
    h("div", { class: "section-head" },
      h("h2", {}, row.name, " ", h("span", { class: "muted small mono" }, row.version)),
      row.settings_problem ? badge("needs attention", "bad") : badge("valid", "ok")),
    row.settings_problem ? h("div", { class: "alert error" }, row.settings_problem) : null,
    h("div", { class: "fields" }, fields.map((f) => f.wrapper)),
    formError,
    h("div", { class: "form-actions" }, save, notice,
      canEdit ? null : h("p", { class: "muted small" }, `Changing settings needs the permission ${NEEDS.configure}.`)));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!save) return;
    const changes = {};
    for (const f of fields) if (f.changed()) changes[f.key] = f.read();
    for (const f of fields) { f.error.replaceChildren(); f.input.removeAttribute("aria-invalid"); }
    formError.replaceChildren();
    notice.textContent = "";
    if (Object.keys(changes).length === 0) { notice.textContent = "Nothing changed."; return; }
    pending(save, "Saving…", async () => {
      try {
        const answer = await request("PUT", `/api/admin/plugins/${encodeURIComponent(row.name)}/settings`, { json: changes });
        onSaved({ ...row, version: answer.version || row.version, settings: answer.settings, settings_problem: answer.problem },
          `Saved. ${row.name} now runs with the new settings.`);
      } catch (err) {
        const target = fields.find((f) => f.key === keyOf(err.message));
        if (target) {
          target.error.replaceChildren(errorBox(err));
          target.input.setAttribute("aria-invalid", "true");
          target.input.focus();
        } else formError.replaceChildren(errorBox(err));
      }
    });
  });
  return form;
}

export function settingsPage(root, session) {
  const canEdit = session.can(NEEDS.configure);
  const slot = h("div", { id: "settings" }, h("p", { class: "muted" }, "Loading settings…"));
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Plugin settings"),
    h("p", { class: "muted" }, "What each plugin lets you configure. Saved values go into config.json (a secret into a file of the host's own, which config.json names) and reach the plugin at once; a value set by an environment variable wins and cannot be changed here.")),
  slot);

  function mount(row, message) {
    const form = pluginForm(row, canEdit, (next, said) => {
      const replacement = mount(next, said);
      form.replaceWith(replacement);
      replacement.querySelector(".notice").textContent = said;
    });
    if (message) form.querySelector(".notice").textContent = message;
    return form;
  }

  (async () => {
    let rows;
    try { rows = await get("/api/admin/plugins"); } catch (e) { slot.replaceChildren(errorBox(e)); return; }
    const configurable = rows.filter((r) => (r.settings || []).length > 0);
    if (configurable.length === 0) {
      slot.replaceChildren(empty("No installed plugin has settings.", "A plugin declares what can be configured in its manifest's [[settings]]; its form appears here once it is installed."));
      return;
    }
    slot.replaceChildren(...configurable.map((r) => mount(r)));
  })();
}
