// The users page: every user with their state, roles and last sign-in;
// creating, editing, disabling, deleting, resetting a password, lifting a
// lock-out, signing a user out everywhere and granting or revoking roles. The page needs
// users.manage (the host asks the same for every call it makes); the role
// picker lists roles when the viewer may also read them (roles.manage) and
// otherwise takes a role's name.

import { del, get, patch, post, put } from "../api.js";
import { NEEDS } from "../session.js";
import { badge, confirmDialog, empty, errorBox, h, pending, showError, when } from "../ui.js";

// The host's password policy (host/src/accounts/password.rs); the host
// checks it again and its message is shown when it refuses.
const PASSWORD_MIN = 10;

// A user's state as one word and a tone.
function stateOf(user) {
  if (user.disabled) return ["disabled", "bad"];
  if (user.locked_until > Date.now()) return ["locked", "warn"];
  return ["active", "ok"];
}

export function usersPage(root, session) {
  const manage = session.can(NEEDS.manageUsers);
  const tableSlot = h("div", { id: "users-table" }, h("p", { class: "muted" }, "Loading users…"));
  let roles = null; // [{name, title}] when the viewer may list them

  root.append(
    h("div", { class: "page-head" },
      h("h1", {}, "Users"),
      h("p", { class: "muted" }, "Who can sign in, with which roles. Disabling a user, a new password or “sign out everywhere” ends their sessions at once.")),
    manage ? createForm() : null,
    h("h2", {}, "All users"), tableSlot);

  function createForm() {
    const errors = h("div", { class: "field-error", id: "new-user-error" });
    const roleChoices = h("div", { class: "checks", id: "new-user-roles" });
    const button = h("button", { type: "submit", class: "primary", id: "create-user" }, "Create user");
    const form = h("form", { class: "card form-grid", id: "new-user-form", autocomplete: "off" },
      h("h2", {}, "Add a user"),
      h("div", { class: "field" }, h("label", { for: "new-login" }, "Login"),
        h("input", { id: "new-login", name: "login", required: true, maxlength: 64, pattern: "[a-z0-9._@\\-]+", autocomplete: "off", "aria-describedby": "new-login-hint" }),
        h("p", { class: "hint", id: "new-login-hint" }, "Lower-case letters, digits, . _ - @")),
      h("div", { class: "field" }, h("label", { for: "new-display" }, "Display name"),
        h("input", { id: "new-display", name: "display_name", maxlength: 200, autocomplete: "off" })),
      h("div", { class: "field" }, h("label", { for: "new-password" }, "Password"),
        h("input", { id: "new-password", name: "password", type: "password", required: true, minlength: PASSWORD_MIN, autocomplete: "new-password", "aria-describedby": "new-password-hint" }),
        h("p", { class: "hint", id: "new-password-hint" }, `At least ${PASSWORD_MIN} characters. Tell the user; they can change it after signing in.`)),
      h("fieldset", { class: "field roles-field" }, h("legend", {}, "Roles"), roleChoices),
      h("div", { class: "form-actions" }, button),
      errors);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      errors.replaceChildren();
      const data = new FormData(form);
      const body = {
        login: data.get("login").trim(),
        password: data.get("password"),
        roles: data.getAll("role"),
      };
      const display = data.get("display_name").trim();
      if (display) body.display_name = display;
      await pending(button, "Creating…", async () => {
        try {
          await post("/api/admin/users", body);
          form.reset();
          form.querySelector("#new-login").focus();
          await loadUsers();
        } catch (error) {
          showError(errors, error);
        }
      });
    });
    return form;
  }

  function fillRoleChoices() {
    const slot = root.querySelector("#new-user-roles");
    if (!slot) return;
    if (!roles) {
      slot.replaceChildren(h("p", { class: "muted small" }, "Grant roles from the list below once the user exists."));
      return;
    }
    slot.replaceChildren(...(roles.length ? roles.map((r) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "role", value: r.name }), ` ${r.title || r.name}`,
      r.title && r.title !== r.name ? h("span", { class: "muted small" }, ` (${r.name})`) : null))
      : [h("p", { class: "muted small" }, "No roles yet.")]));
  }

  // Runs `work` from a row's button and shows its error under that row.
  async function rowWork(button, label, work) {
    const slot = button.closest("tr").nextElementSibling?.querySelector(".row-error");
    slot?.replaceChildren();
    await pending(button, label, async () => {
      try {
        await work();
        await loadUsers();
      } catch (error) {
        if (slot) showError(slot, error);
      }
    });
  }

  function roleCell(user) {
    const enc = encodeURIComponent(user.login);
    const chips = user.roles.map((role) => h("span", { class: "chip" }, role,
      manage ? h("button", { type: "button", class: "chip-remove", "aria-label": `Revoke role ${role} from ${user.login}`, title: `Revoke ${role}`,
        dataset: { revokeRole: role },
        onclick: (e) => rowWork(e.currentTarget, "…", () => del(`/api/admin/users/${enc}/roles/${encodeURIComponent(role)}`)) }, "×") : null));
    if (!manage) return h("div", { class: "chips" }, chips.length ? chips : h("span", { class: "muted" }, "no roles"));
    const id = `grant-${user.id}`;
    const missing = roles ? roles.filter((r) => !user.roles.includes(r.name)) : null;
    const picker = missing
      ? h("select", { id, name: "role", dataset: { grantRoleFor: user.login } },
        h("option", { value: "" }, "Add a role…"), missing.map((r) => h("option", { value: r.name }, r.title || r.name)))
      : h("input", { id, name: "role", placeholder: "role name", dataset: { grantRoleFor: user.login } });
    const grant = h("button", { type: "button", class: "secondary small", dataset: { action: "grant-role" } }, "Grant");
    grant.addEventListener("click", () => {
      const role = picker.value.trim();
      if (!role) { picker.focus(); return; }
      rowWork(grant, "Granting…", () => put(`/api/admin/users/${enc}/roles/${encodeURIComponent(role)}`));
    });
    const form = (missing && missing.length === 0) ? null
      : h("div", { class: "grant-role" }, h("label", { for: id, class: "visually-hidden" }, `Role to grant ${user.login}`), picker, grant);
    return h("div", {}, h("div", { class: "chips" }, chips.length ? chips : h("span", { class: "muted small" }, "no roles")), form);
  }

  function actions(user) {
    if (!manage) return [h("span", { class: "muted small" }, "view only")];
    const enc = encodeURIComponent(user.login);
    const self = user.login === session.login;
    const button = (action, text, cls, onclick) =>
      h("button", { type: "button", class: `${cls} small`, dataset: { action }, onclick: (e) => onclick(e.currentTarget) }, text);
    // No disabling or deleting oneself from here: it would lock the
    // signed-in administrator out mid-task.
    const list = [
      button("edit", "Edit", "secondary", async (b) => {
        const answer = await confirmDialog({
          title: `Edit ${user.login}`, confirm: "Save",
          body: [h("div", { class: "field" }, h("label", { for: "edit-display" }, "Display name"),
            h("input", { id: "edit-display", name: "display_name", value: user.display_name, required: true, maxlength: 200 }))],
        });
        if (answer) rowWork(b, "Saving…", () => patch(`/api/admin/users/${enc}`, { display_name: answer.display_name }));
      }),
      button("reset-password", "Reset password", "secondary", async (b) => {
        const answer = await confirmDialog({
          title: `New password for ${user.login}`, confirm: "Set password",
          body: [h("p", {}, `${user.display_name}'s sessions end; they sign in again with the new password.`),
            h("div", { class: "field" }, h("label", { for: "reset-password-input" }, "New password"),
              h("input", { id: "reset-password-input", name: "password", type: "password", required: true, minlength: PASSWORD_MIN, autocomplete: "new-password" }),
              h("p", { class: "hint" }, `At least ${PASSWORD_MIN} characters.`))],
        });
        if (answer) rowWork(b, "Setting…", () => patch(`/api/admin/users/${enc}`, { password: answer.password }));
      }),
      stateOf(user)[0] === "locked"
        ? button("unlock", "Unlock", "secondary", (b) => rowWork(b, "Unlocking…", () => post(`/api/admin/users/${enc}/unlock`)))
        : null,
      button("sign-out", "Sign out everywhere", "secondary", async (b) => {
        const answer = await confirmDialog({
          title: `Sign ${user.login} out everywhere?`, confirm: "Sign out everywhere",
          body: [h("p", {}, self
            ? "Every one of your sessions ends, this one included: you will sign in again."
            : `Every session of ${user.display_name} ends at once; they can sign in again.`)],
        });
        if (answer) rowWork(b, "Signing out…", () => post(`/api/admin/users/${enc}/sign-out`));
      }),
      self ? null : user.disabled
        ? button("enable", "Enable", "secondary", (b) => rowWork(b, "Enabling…", () => patch(`/api/admin/users/${enc}`, { disabled: false })))
        : button("disable", "Disable", "danger", async (b) => {
          const answer = await confirmDialog({
            title: `Disable ${user.login}?`, confirm: "Disable", danger: true,
            body: [h("p", {}, `${user.display_name} is signed out everywhere and cannot sign in until enabled again. Their roles are kept.`)],
          });
          if (answer) rowWork(b, "Disabling…", () => patch(`/api/admin/users/${enc}`, { disabled: true }));
        }),
      self ? null : button("delete", "Delete", "danger", async (b) => {
        const answer = await confirmDialog({
          title: `Delete ${user.login}?`, confirm: "Delete user", danger: true,
          body: [h("p", {}, `${user.display_name} and their role memberships go; their audit records stay. This cannot be undone: disabling keeps the account instead.`)],
        });
        if (answer) rowWork(b, "Deleting…", () => del(`/api/admin/users/${enc}`));
      }),
    ];
    return list;
  }

  async function loadUsers() {
    try {
      const [users, roleList] = await Promise.all([
        get("/api/admin/users"),
        session.can(NEEDS.manageRoles) ? get("/api/admin/roles").catch(() => null) : Promise.resolve(null),
      ]);
      roles = roleList;
      fillRoleChoices();
      if (users.length === 0) {
        tableSlot.replaceChildren(empty("No users yet.", "Add one with the form above."));
        return;
      }
      const rows = users.flatMap((u) => {
        const [state, tone] = stateOf(u);
        return [
          h("tr", { dataset: { user: u.login } },
            h("th", { scope: "row" }, h("div", { class: "name" }, u.display_name),
              h("div", { class: "muted small login" }, u.login)),
            h("td", { dataset: { label: "State" } }, badge(state, tone),
              state === "locked" ? h("div", { class: "muted small" }, `until ${when(u.locked_until)}`) : null),
            h("td", { class: "roles", dataset: { label: "Roles" } }, roleCell(u)),
            h("td", { class: "small", dataset: { label: "Last sign-in" } }, u.last_sign_in_at ? when(u.last_sign_in_at) : "never"),
            h("td", { class: "actions" }, actions(u))),
          h("tr", { class: "error-row" }, h("td", { colspan: 5 }, h("div", { class: "row-error" }))),
        ];
      });
      tableSlot.replaceChildren(h("div", { class: "table-wrap" }, h("table", { class: "users cards-on-phone" },
        h("thead", {}, h("tr", {}, ["User", "State", "Roles", "Last sign-in", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows))));
    } catch (error) {
      tableSlot.replaceChildren(errorBox(error));
    }
  }

  loadUsers();
}
