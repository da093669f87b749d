// The upgrade agent panel: the connection to the vendor, the last offer
// and, per package, the download progress and step, then the outcome;
// redrawn from each `agent` event of the live feed while a push arrives.

import { get, post } from "../api.js";
import { live } from "../live.js";
import { NEEDS } from "../session.js";
import { badge, bytes, empty, errorBox, h, pending, showError, stateTone, when } from "../ui.js";

function connectionText(c) {
  switch (c.state) {
    case "disabled": return "Off: no vendor.endpoint in config.json";
    case "connecting": return "Connecting…";
    case "connected": return "Connected";
    case "backing_off": return `Retrying in ${Math.round(c.retry_in_ms / 1000)} s (attempt ${c.attempt}): ${c.reason}`;
    case "stopped": return `Stopped: ${c.reason}`;
    default: return c.state;
  }
}

function packageState(p) {
  const s = p.state;
  if (!s) return { step: "waiting", fraction: 0 };
  if (s.state === "downloading") return { step: "downloading", fraction: s.total ? s.bytes / s.total : 0, detail: `${bytes(s.bytes)} of ${bytes(s.total)}` };
  const reason = s.reason ? `: ${s.reason}` : "";
  return { step: s.state, fraction: ["verifying", "installing", "success"].includes(s.state) ? 1 : 0, detail: reason };
}

export function agentPage(root, session) {
  const body = h("div", { id: "agent" }, h("p", { class: "muted" }, "Loading…"));
  const errors = h("div", { class: "field-error", id: "agent-error" });
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Upgrade agent"),
    h("p", { class: "muted" }, "The link to your vendor: releases they push arrive here, are verified, downloaded and installed while the host keeps serving.")),
  body, errors);

  function draw(a) {
    const c = a.connection;
    const facts = h("dl", { class: "facts" },
      h("dt", {}, "Connection"), h("dd", { id: "agent-connection" }, badge(c.state.replace("_", " "), stateTone(c.state)), " ", connectionText(c)),
      h("dt", {}, "Vendor"), h("dd", { id: "agent-vendor" }, a.endpoint || "—"),
      h("dt", {}, "Customer"), h("dd", {}, a.customer || "—"),
      h("dt", {}, "Connected since"), h("dd", {}, when(a.connected_since_ms)),
      h("dt", {}, "Connections"), h("dd", {}, String(a.connections)),
      a.last_error ? [h("dt", {}, "Last error"), h("dd", { class: "error" }, a.last_error)] : null,
      a.clock_warning ? [h("dt", {}, "Clock"), h("dd", { class: "error" }, a.clock_warning)] : null,
      h("dt", {}, "Reports not yet acknowledged"), h("dd", {}, String(a.unacknowledged_reports)));
    let reconnect = null;
    if (a.enabled && session.can(NEEDS.reconnectAgent) && !a.connected) {
      reconnect = h("button", { type: "button", class: "secondary", id: "agent-reconnect" }, "Reconnect now");
      reconnect.addEventListener("click", () => pending(reconnect, "Reconnecting…", async () => {
        errors.replaceChildren();
        try { draw(await post("/api/admin/agent/reconnect")); } catch (e) { showError(errors, e); }
      }));
    }
    const o = a.last_offer;
    const offer = o
      ? h("div", { class: "card", id: "agent-offer" },
        h("div", { class: "section-head" }, h("h2", {}, "Last offer"), badge(o.outcome, stateTone(o.outcome))),
        h("p", { class: "muted small" }, `Deployment ${o.deployment_id}, received ${when(o.received_at_ms)}`),
        o.reason ? h("p", { class: "error" }, o.reason) : null,
        h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, ["Package", "Version", "Size", "Step", "Progress"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, o.packages.map((p) => {
            const s = packageState(p);
            return h("tr", { dataset: { package: p.name } },
              h("th", { scope: "row" }, p.name), h("td", {}, p.version), h("td", {}, bytes(p.size)),
              h("td", { class: "step-cell" }, badge(s.step, stateTone(s.step)),
                p.retry_reason ? h("div", { class: "muted small" }, `resumed after: ${p.retry_reason}`) : null),
              h("td", {}, h("progress", { max: 100, value: Math.round(s.fraction * 100), "aria-label": `${p.name} progress` }),
                h("span", { class: "muted small" }, ` ${Math.round(s.fraction * 100)}% ${s.detail || ""}`)));
          })))))
      : empty("No offer received yet.", a.enabled ? "When the vendor pushes a release it shows here, with each package's progress." : "Set vendor.endpoint in config.json to connect this host to its vendor.");
    body.replaceChildren(h("div", { class: "card" }, facts, reconnect), offer);
  }

  const onAgent = (e) => draw(e.detail);
  const reload = async () => {
    try { draw(await get("/api/admin/agent")); } catch (e) { body.replaceChildren(errorBox(e)); }
  };
  live.addEventListener("agent", onAgent);
  live.addEventListener("resync", reload);
  reload();
  return () => {
    live.removeEventListener("agent", onAgent);
    live.removeEventListener("resync", reload);
  };
}
