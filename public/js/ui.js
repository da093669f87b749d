// Small DOM helpers shared by the pages. Text always goes in through
// textContent (never innerHTML), so nothing a plugin manifest, the vendor
// or a server message holds can inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// An error box for beside the control that caused it: the server's message,
// and its request id so an operator can find the log lines.
export function errorBox(error) {
  return h("div", { class: "alert error", role: "alert" },
    // Server messages start in lower case (they read well after a colon).
    h("strong", {}, error.message.charAt(0).toUpperCase() + error.message.slice(1)),
    error.requestId ? h("span", { class: "request-id" }, ` request id ${error.requestId}`) : null);
}

export function showError(slot, error) {
  slot.replaceChildren(errorBox(error));
}

// Runs `work` with `button` in its pending state: disabled, busy, with a
// spinner and a "…ing" label, restored afterwards whatever happens.
export async function pending(button, label, work) {
  const before = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.classList.add("pending");
  button.textContent = label;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.classList.remove("pending");
    button.textContent = before;
  }
}

export function badge(text, tone) {
  return h("span", { class: `badge ${tone || ""}` }, text);
}

export function stateTone(state) {
  switch (state) {
    case "enabled": case "connected": case "success": case "done": return "ok";
    case "disabled": case "connecting": case "received": case "applying": return "warn";
    case "failed": case "failure": case "refused": case "stopped": case "rolled_back": return "bad";
    default: return "";
  }
}

export function empty(title, hint) {
  return h("div", { class: "empty" }, h("p", { class: "empty-title" }, title), hint ? h("p", { class: "muted" }, hint) : null);
}

export function when(ms) {
  if (!ms) return "—";
  return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// Asks before an operation; resolves to the values of the dialog's inputs,
// or null when cancelled. `body` is a list of nodes (what happens to data).
export function confirmDialog({ title, body, confirm, danger }) {
  return new Promise((resolve) => {
    const form = h("form", { method: "dialog" },
      h("h2", {}, title),
      ...body,
      h("div", { class: "actions" },
        h("button", { type: "button", value: "cancel", class: "secondary", autofocus: true, onclick: () => dialog.close("cancel") }, "Cancel"),
        h("button", { type: "submit", value: "ok", class: danger ? "danger" : "primary" }, confirm)));
    const dialog = h("dialog", { "aria-label": title }, form);
    dialog.addEventListener("close", () => {
      const values = Object.fromEntries(new FormData(form));
      dialog.remove();
      resolve(dialog.returnValue === "ok" ? values : null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
