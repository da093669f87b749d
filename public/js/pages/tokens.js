// The service tokens page: tokens for scripts and the CLI, each with its
// own host permissions. A new token is shown once, with a copy button;
// the host keeps only its hash. Revoking refuses it from the next request.

import { del, get, post } from "../api.js";
import { NEEDS } from "../session.js";
import { badge, confirmDialog, empty, errorBox, h, pending, showError, when } from "../ui.js";

export function tokensPage(root, session) {
  const tableSlot = h("div", { id: "tokens-table" }, h("p", { class: "muted" }, "Loading tokens…"));
  const revealed = h("div", { id: "new-token", "aria-live": "polite" });

  root.append(
    h("div", { class: "page-head" },
      h("h1", {}, "Service tokens"),
      h("p", { class: "muted" }, "For scripts and the command line: send one as “Authorization: Bearer <token>”. A token holds only the host permissions chosen here.")),
    revealed, createForm(),
    h("h2", {}, "Tokens"), tableSlot);

  function createForm() {
    const errors = h("div", { class: "field-error", id: "new-token-error" });
    const choices = h("div", { class: "checks columns", id: "new-token-permissions" }, h("p", { class: "muted small" }, "Loading permissions…"));
    const button = h("button", { type: "submit", class: "primary", id: "create-token" }, "Create token");
    const form = h("form", { class: "card", id: "new-token-form", autocomplete: "off" },
      h("h2", {}, "Create a token"),
      h("div", { class: "field narrow" }, h("label", { for: "new-token-name" }, "Name"),
        h("input", { id: "new-token-name", name: "name", required: true, maxlength: 64, pattern: "[a-z0-9._@\\-]+", placeholder: "nightly-backup", "aria-describedby": "new-token-hint" }),
        h("p", { class: "hint", id: "new-token-hint" }, "Say what uses it: lower-case letters, digits, . _ - @")),
      h("fieldset", { class: "field" }, h("legend", {}, "Permissions"), choices),
      h("div", { class: "form-actions" }, button),
      errors);
    // The host's codes come from the host (roles.manage reads them); a
    // viewer without it types them instead.
    const codes = session.can(NEEDS.manageRoles) ? get("/api/admin/permissions").then((c) => c.host) : Promise.reject(new Error("no list"));
    codes.then((host) => choices.replaceChildren(...host.map((c) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "permission", value: c.code }),
      h("span", {}, h("code", {}, c.code), h("span", { class: "muted small" }, ` ${c.title}`))))))
      .catch(() => choices.replaceChildren(h("div", { class: "field" },
        h("label", { for: "new-token-codes" }, "Permission codes, separated by commas"),
        h("input", { id: "new-token-codes", name: "codes", placeholder: "plugins.view, plugins.install" }))));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      errors.replaceChildren();
      const data = new FormData(form);
      const typed = (data.get("codes") || "").split(",").map((c) => c.trim()).filter(Boolean);
      const body = { name: data.get("name").trim(), permissions: [...data.getAll("permission"), ...typed] };
      await pending(button, "Creating…", async () => {
        try {
          const made = await post("/api/admin/tokens", body);
          form.reset();
          reveal(made);
          await loadTokens();
        } catch (error) {
          showError(errors, error);
        }
      });
    });
    return form;
  }

  // The token, once: the host cannot show it again.
  function reveal(made) {
    const value = h("input", { id: "token-value", readonly: true, value: made.token, "aria-label": `The token ${made.name}`, class: "mono" });
    const status = h("span", { class: "muted small", id: "copy-status", "aria-live": "polite" });
    const copy = h("button", { type: "button", class: "secondary", id: "copy-token", onclick: async () => {
      value.select();
      try {
        await navigator.clipboard.writeText(made.token);
        status.textContent = "Copied.";
      } catch {
        // Without clipboard access (plain http) the selection still lets
        // the user copy with the keyboard.
        status.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
      }
    } }, "Copy");
    const done = h("button", { type: "button", class: "secondary", onclick: () => revealed.replaceChildren() }, "I have stored it");
    revealed.replaceChildren(h("div", { class: "card reveal", role: "status" },
      h("h3", {}, `Token ${made.name} created`),
      h("p", {}, "Copy it now and keep it somewhere safe: it is shown only this once."),
      h("div", { class: "row" }, value, copy, done), status));
    revealed.scrollIntoView({ block: "nearest" });
    value.focus();
    value.select();
  }

  async function loadTokens() {
    try {
      const tokens = await get("/api/admin/tokens");
      if (tokens.length === 0) {
        tableSlot.replaceChildren(empty("No service tokens yet.", "Create one above for a script or the command line."));
        return;
      }
      const rows = tokens.flatMap((t) => [
        h("tr", { dataset: { token: t.name } },
          h("th", { scope: "row" }, h("div", { class: "name" }, t.name)),
          h("td", { dataset: { label: "State" } }, t.revoked_at ? badge("revoked", "bad") : badge("valid", "ok"),
            t.revoked_at ? h("div", { class: "muted small" }, when(t.revoked_at)) : null),
          h("td", { class: "small", dataset: { label: "Permissions" } }, t.permissions.length ? t.permissions.map((p) => h("code", { class: "code-chip" }, p)) : h("span", { class: "muted" }, "none")),
          h("td", { class: "small", dataset: { label: "Created" } }, when(t.created_at)),
          h("td", { class: "small", dataset: { label: "Last used" } }, t.last_used_at ? when(t.last_used_at) : "never"),
          h("td", { class: "actions" }, t.revoked_at ? null : h("button", { type: "button", class: "danger small", dataset: { action: "revoke-token" },
            onclick: async (e) => {
              const button = e.currentTarget;
              const slot = button.closest("tr").nextElementSibling.querySelector(".row-error");
              const answer = await confirmDialog({
                title: `Revoke the token ${t.name}?`, confirm: "Revoke", danger: true,
                body: [h("p", {}, "Whatever uses it is refused from its next request. This cannot be undone: create a new token instead.")],
              });
              if (!answer) return;
              slot.replaceChildren();
              await pending(button, "Revoking…", async () => {
                try {
                  await del(`/api/admin/tokens/${encodeURIComponent(t.name)}`);
                  await loadTokens();
                } catch (error) {
                  showError(slot, error);
                }
              });
            } }, "Revoke"))),
        h("tr", { class: "error-row" }, h("td", { colspan: 6 }, h("div", { class: "row-error" }))),
      ]);
      tableSlot.replaceChildren(h("div", { class: "table-wrap" }, h("table", { class: "tokens cards-on-phone" },
        h("thead", {}, h("tr", {}, ["Name", "State", "Permissions", "Created", "Last used", "Actions"].map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, rows))));
    } catch (error) {
      tableSlot.replaceChildren(errorBox(error));
    }
  }

  loadTokens();
}
