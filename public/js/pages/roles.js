// The roles page: every role, creating and deleting them, and one role's
// grants as a tree per plugin (its menus, the buttons on each menu, then
// its API permissions with the routes they open) and the host's own codes
// under "Host". Each check box grants or revokes at once. Which codes exist
// comes from GET /api/admin/permissions (the host's list and the serving
// plugins' manifests), never from a copy here.

import { del, get, post, put } from "../api.js";
import { confirmDialog, badge, empty, errorBox, h, pending, showError } from "../ui.js";

const SCOPES = [
  ["self", "Own records"],
  ["department", "Their department's"],
  ["all", "All records"],
  ["custom", "Custom"],
];

export function rolesPage(root) {
  const listSlot = h("div", { id: "roles-list", class: "role-list" }, h("p", { class: "muted" }, "Loading roles…"));
  const grantsSlot = h("div", { id: "role-grants", class: "role-grants", "aria-live": "polite" });
  let roles = [];
  let codes = null; // GET /api/admin/permissions
  let selected = null;

  root.append(
    h("div", { class: "page-head" },
      h("h1", {}, "Roles"),
      h("p", { class: "muted" }, "A role is a set of grants: which menus a user sees, which buttons they may press, which API calls they may make. Changes apply from a user's next request.")),
    createForm(),
    h("div", { class: "roles-layout" },
      h("section", { "aria-labelledby": "roles-heading" }, h("h2", { id: "roles-heading" }, "Roles"), listSlot),
      h("section", { "aria-labelledby": "grants-heading" }, h("h2", { id: "grants-heading" }, "Grants"), grantsSlot)));

  function createForm() {
    const errors = h("div", { class: "field-error", id: "new-role-error" });
    const button = h("button", { type: "submit", class: "primary", id: "create-role" }, "Create role");
    const form = h("form", { class: "card form-grid", id: "new-role-form", autocomplete: "off" },
      h("h2", {}, "Add a role"),
      h("div", { class: "field" }, h("label", { for: "new-role-name" }, "Name"),
        h("input", { id: "new-role-name", name: "name", required: true, maxlength: 64, pattern: "[a-z0-9._@\\-]+", "aria-describedby": "new-role-hint" }),
        h("p", { class: "hint", id: "new-role-hint" }, "Lower-case letters, digits, . _ - @ (e.g. warehouse)")),
      h("div", { class: "field" }, h("label", { for: "new-role-title" }, "Title"),
        h("input", { id: "new-role-title", name: "title", maxlength: 200, placeholder: "Warehouse staff" })),
      h("div", { class: "field" }, h("label", { for: "new-role-scope" }, "Data scope"),
        h("select", { id: "new-role-scope", name: "data_scope", "aria-describedby": "new-role-scope-hint" },
          SCOPES.map(([value, text]) => h("option", { value }, text))),
        h("p", { class: "hint", id: "new-role-scope-hint" }, "Which records its users see: passed to plugins with the user, each plugin applies it to its own data.")),
      h("div", { class: "form-actions" }, button),
      errors);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      errors.replaceChildren();
      const data = new FormData(form);
      const body = { name: data.get("name").trim(), data_scope: data.get("data_scope") };
      const title = data.get("title").trim();
      if (title) body.title = title;
      await pending(button, "Creating…", async () => {
        try {
          const role = await post("/api/admin/roles", body);
          form.reset();
          selected = role.name;
          await loadRoles();
        } catch (error) {
          showError(errors, error);
        }
      });
    });
    return form;
  }

  function roleItem(role) {
    const current = role.name === selected;
    const open = h("button", { type: "button", class: "role-open", "aria-pressed": String(current), dataset: { role: role.name },
      onclick: async () => {
        selected = role.name;
        drawList();
        await loadGrants();
        // At phone width the grants are below the list: bring them up.
        if (window.matchMedia("(max-width: 760px)").matches) grantsSlot.scrollIntoView({ block: "start" });
      } },
    h("span", { class: "name" }, role.title || role.name),
    h("span", { class: "muted small" }, role.title && role.title !== role.name ? ` ${role.name} · ` : " ", `scope ${role.data_scope}`),
    role.builtin ? badge("built-in", "") : null);
    const error = h("div", { class: "row-error" });
    const remove = role.builtin ? null : h("button", { type: "button", class: "danger small", dataset: { action: "delete-role", role: role.name },
      "aria-label": `Delete role ${role.name}`,
      onclick: async (e) => {
        const button = e.currentTarget;
        const answer = await confirmDialog({
          title: `Delete the role ${role.name}?`, confirm: "Delete role", danger: true,
          body: [h("p", {}, "Its grants go, and every user holding it loses what it gave them from their next request. Users keep their other roles.")],
        });
        if (!answer) return;
        error.replaceChildren();
        await pending(button, "Deleting…", async () => {
          try {
            await del(`/api/admin/roles/${encodeURIComponent(role.name)}`);
            if (selected === role.name) selected = null;
            await loadRoles();
          } catch (err) {
            showError(error, err);
          }
        });
      } }, "Delete");
    return h("li", { class: current ? "current" : "" }, h("div", { class: "role-row" }, open, remove), error);
  }

  function drawList() {
    if (roles.length === 0) {
      listSlot.replaceChildren(empty("No roles yet.", "Add one above."));
      return;
    }
    listSlot.replaceChildren(h("ul", { class: "plain roles", role: "list" }, roles.map(roleItem)));
  }

  // One check box for `code`; every box of the same code (a menu's code
  // is often an API permission too) follows the same grant.
  function codeBox(code, title, granted, extra) {
    const id = `grant-${code}-${Math.random().toString(36).slice(2, 8)}`;
    const box = h("input", { type: "checkbox", id, checked: granted.has(code), dataset: { code } });
    const state = h("span", { class: "grant-state muted small", "aria-live": "polite" });
    const error = h("div", { class: "grant-error" });
    box.addEventListener("change", async () => {
      const want = box.checked;
      const role = encodeURIComponent(selected);
      error.replaceChildren();
      const same = [...grantsSlot.querySelectorAll("input[data-code]")].filter((b) => b.dataset.code === code);
      same.forEach((b) => { b.disabled = true; b.checked = want; });
      state.textContent = want ? "granting…" : "revoking…";
      state.classList.add("pending");
      try {
        const path = `/api/admin/roles/${role}/grants/${encodeURIComponent(code)}`;
        const now = want ? await put(path) : await del(path);
        granted.clear();
        for (const g of now || []) granted.add(g.permission);
        state.textContent = want ? "granted" : "revoked";
      } catch (err) {
        same.forEach((b) => { b.checked = !want; });
        state.textContent = "";
        showError(error, err);
      } finally {
        same.forEach((b) => { b.disabled = false; });
        state.classList.remove("pending");
      }
    });
    return h("div", { class: "grant" },
      h("div", { class: "grant-line" },
        h("label", { for: id, class: "check" }, box,
          h("span", {}, h("span", { class: "grant-title" }, title), " ", h("code", {}, code), extra ? h("span", { class: "muted small grant-extra" }, extra) : null)),
        state),
      error);
  }

  // The plugin's menus nested by parent in declared order, each with its
  // own code and the buttons that sit on it.
  function menuTree(plugin, granted) {
    // A menu hung under another plugin's entry is a root of this tree.
    const ids = new Set(plugin.menus.map((m) => m.id));
    const children = (parent) => plugin.menus.filter((m) => (m.parent && ids.has(m.parent) ? m.parent : null) === parent);
    const node = (menu) => {
      const buttons = plugin.buttons.filter((b) => b.menu === menu.id);
      const sub = children(menu.id);
      return h("li", { dataset: { menu: `${plugin.plugin}/${menu.id}` } },
        menu.permission
          ? codeBox(menu.permission, `Menu “${menu.title}”`, granted, ` opens ${menu.path}`)
          : h("div", { class: "grant" }, h("span", { class: "grant-title" }, `Menu “${menu.title}”`), h("span", { class: "muted small" }, " open to everyone signed in")),
        buttons.length || sub.length
          ? h("ul", { role: "list" },
            buttons.map((b) => h("li", { dataset: { button: b.code } }, codeBox(b.code, `Button “${b.title}”`, granted))),
            sub.map(node))
          : null);
    };
    return children(null).map(node);
  }

  function pluginSection(plugin, granted) {
    const menuIds = new Set(plugin.menus.map((m) => m.id));
    const loose = plugin.buttons.filter((b) => !b.menu || !menuIds.has(b.menu));
    return h("details", { class: "grant-group", open: true, dataset: { plugin: plugin.plugin } },
      h("summary", {}, h("strong", {}, plugin.plugin), h("span", { class: "muted small" }, ` ${plugin.version}`)),
      h("div", { class: "grant-tree" },
        plugin.menus.length ? [h("h4", {}, "Menus and their buttons"), h("ul", { class: "tree", role: "list" }, menuTree(plugin, granted))] : null,
        loose.length ? [h("h4", {}, "Buttons"), h("ul", { class: "tree", role: "list" }, loose.map((b) => h("li", { dataset: { button: b.code } }, codeBox(b.code, `Button “${b.title}”`, granted))))] : null,
        plugin.permissions.length ? [h("h4", {}, "API permissions"), h("ul", { class: "tree", role: "list" },
          plugin.permissions.map((p) => h("li", { dataset: { api: p.code } },
            codeBox(p.code, p.title, granted, p.routes.length ? ` ${p.routes.join(", ")}` : " no route needs it yet"))))] : null,
        !plugin.menus.length && !plugin.buttons.length && !plugin.permissions.length
          ? h("p", { class: "muted small" }, "This plugin declares nothing to grant.") : null));
  }

  async function loadGrants() {
    if (!selected) {
      grantsSlot.replaceChildren(empty("Choose a role", "Its grants appear here, ready to change."));
      return;
    }
    const role = roles.find((r) => r.name === selected);
    grantsSlot.replaceChildren(h("p", { class: "muted" }, `Loading the grants of ${selected}…`));
    try {
      if (!codes) codes = await get("/api/admin/permissions");
      if (role?.name === codes.super_admin_role) {
        grantsSlot.replaceChildren(h("div", { class: "card" }, h("h3", {}, role.title || role.name),
          h("p", {}, "This built-in role holds every permission, present and future, without grants. Give it only to people who run the host.")));
        return;
      }
      const granted = new Set((await get(`/api/admin/roles/${encodeURIComponent(selected)}/grants`)).map((g) => g.permission));
      const known = new Set([...codes.host.map((c) => c.code),
        ...codes.plugins.flatMap((p) => [...p.permissions.map((x) => x.code), ...p.buttons.map((b) => b.code)])]);
      const unknown = [...granted].filter((c) => !known.has(c));
      grantsSlot.replaceChildren(h("div", { class: "card grants-card", dataset: { grantsOf: selected } },
        h("h3", {}, `${role?.title || selected}`, h("span", { class: "muted small" }, ` ${selected}`)),
        codes.plugins.length ? codes.plugins.map((p) => pluginSection(p, granted))
          : h("p", { class: "muted" }, "No plugin is serving, so only the host's own permissions can be granted."),
        h("details", { class: "grant-group", open: true, dataset: { plugin: "" } },
          h("summary", {}, h("strong", {}, "Host"), h("span", { class: "muted small" }, " the admin pages and API")),
          h("ul", { class: "tree", role: "list" }, codes.host.map((c) => h("li", {}, codeBox(c.code, c.title, granted))))),
        unknown.length ? h("div", { class: "grant-group" }, h("h4", {}, "Other grants"),
          h("p", { class: "muted small" }, "Codes no serving plugin declares now (a disabled plugin's, for example)."),
          h("ul", { class: "tree", role: "list" }, unknown.map((c) => h("li", {}, codeBox(c, "", granted))))) : null));
    } catch (error) {
      grantsSlot.replaceChildren(errorBox(error));
    }
  }

  async function loadRoles() {
    try {
      roles = await get("/api/admin/roles");
      if (selected && !roles.some((r) => r.name === selected)) selected = null;
      if (!selected) selected = roles.find((r) => !r.builtin)?.name || roles[0]?.name || null;
      drawList();
      loadGrants();
    } catch (error) {
      listSlot.replaceChildren(errorBox(error));
    }
  }

  loadRoles();
}
