// The landing page: is the host healthy, what serves, is the agent
// connected, and the last few operations, each linking to its page.

import { get } from "../api.js";
import { NEEDS } from "../session.js";
import { badge, empty, errorBox, h, stateTone, when } from "../ui.js";

export function overviewPage(root, session) {
  const cards = h("div", { class: "cards" });
  root.append(h("div", { class: "page-head" }, h("h1", {}, `Welcome, ${session.name}`),
    h("p", { class: "muted" }, "This host at a glance.")), cards);

  const card = (title, ...body) => h("div", { class: "card" }, h("h2", {}, title), ...body);
  const healthCard = card("Health", h("p", { class: "muted" }, "Checking…"));
  cards.append(healthCard);
  get("/healthz").then((hz) => healthCard.replaceChildren(h("h2", {}, "Health"),
    badge(hz.status || "ok", "ok"), h("p", {}, hz.plugins === 1 ? "1 plugin serving" : `${hz.plugins} plugins serving`)))
    .catch((e) => healthCard.replaceChildren(h("h2", {}, "Health"), errorBox(e)));

  if (session.can(NEEDS.viewAgent)) {
    const agentCard = card("Upgrade agent", h("p", { class: "muted" }, "Loading…"));
    cards.append(agentCard);
    get("/api/admin/agent").then((a) => agentCard.replaceChildren(h("h2", {}, "Upgrade agent"),
      badge(a.connection.state.replace("_", " "), stateTone(a.connection.state)),
      h("p", {}, a.enabled ? a.endpoint : "Not connected to a vendor."), h("a", { href: "#/agent" }, "Open the agent panel")))
      .catch((e) => agentCard.replaceChildren(h("h2", {}, "Upgrade agent"), errorBox(e)));
  }
  if (session.can(NEEDS.viewTasks)) {
    const tasksCard = card("Tasks", h("p", { class: "muted" }, "Loading…"));
    cards.append(tasksCard);
    get("/api/admin/tasks").then((tasks) => {
      const failing = tasks.filter((t) => ["failed", "timed_out"].includes(t.last_run?.outcome));
      const paused = tasks.filter((t) => t.paused);
      tasksCard.replaceChildren(h("h2", {}, "Tasks"),
        failing.length ? badge(`${failing.length} failing`, "bad") : badge(tasks.length ? "all well" : "none", tasks.length ? "ok" : ""),
        h("p", {}, `${tasks.length} scheduled${paused.length ? `, ${paused.length} paused` : ""}`),
        h("a", { href: "#/tasks" }, "Open the tasks page"));
    }).catch((e) => tasksCard.replaceChildren(h("h2", {}, "Tasks"), errorBox(e)));
  }
  if (session.can(NEEDS.viewEvents)) {
    const eventsCard = card("Dead letters", h("p", { class: "muted" }, "Loading…"));
    cards.append(eventsCard);
    get("/api/admin/events/dead-letters?limit=1000").then((list) => {
      eventsCard.replaceChildren(h("h2", {}, "Dead letters"),
        badge(list.length ? `${list.length} waiting` : "none", list.length ? "bad" : "ok"),
        h("p", {}, list.length ? "Events a subscriber kept refusing." : "Every event reached its subscribers."),
        h("a", { href: "#/dead-letters" }, "Open the dead letters"));
    }).catch((e) => eventsCard.replaceChildren(h("h2", {}, "Dead letters"), errorBox(e)));
  }
  if (session.can(NEEDS.viewPlugins)) {
    const opsCard = card("Recent operations", h("p", { class: "muted" }, "Loading…"));
    cards.append(opsCard);
    get("/api/admin/journal?limit=60").then((rows) => {
      const finals = rows.filter((r) => ["done", "failed", "recovered"].includes(r.step)).slice(0, 5);
      opsCard.replaceChildren(h("h2", {}, "Recent operations"),
        finals.length ? h("ul", { class: "plain", role: "list" }, finals.map((r) => h("li", {},
          badge(r.step, stateTone(r.step)), ` ${r.plugin} ${r.operation} ${r.to_version || ""} `, h("span", { class: "muted small" }, when(r.at)))))
          : empty("No operations yet."),
        h("a", { href: "#/plugins" }, "Open the plugins page"));
    }).catch((e) => opsCard.replaceChildren(h("h2", {}, "Recent operations"), errorBox(e)));
  }
}
