// The dead letters page: event deliveries that failed events.max_attempts
// times (topic, subscriber, attempts, last error, when published, the
// payload on request), with replay one, replay all and discard for a user
// holding events.manage. A replay starts the delivery again with a fresh
// count of attempts, so the list is read again after each action.

import { del, get, post } from "../api.js";
import { NEEDS } from "../session.js";
import { badge, confirmDialog, empty, errorBox, h, pending, when } from "../ui.js";

export function eventsPage(root, session) {
  const canManage = session.can(NEEDS.manageEvents);
  const listSlot = h("div", { id: "dead-letters" }, h("p", { class: "muted" }, "Loading dead letters…"));
  const topErrors = h("div", { id: "dead-letters-error" });
  const notice = h("p", { class: "notice", id: "dead-letters-notice", role: "status" });
  const replayAll = canManage
    ? h("button", { type: "button", class: "primary", id: "replay-all", hidden: true }, "Replay all")
    : null;
  const refresh = h("button", { type: "button", class: "secondary", id: "dead-letters-refresh" }, "Refresh");
  root.append(
    h("div", { class: "page-head section-head" },
      h("div", {}, h("h1", {}, "Dead letters"),
        h("p", { class: "muted" }, "Events a subscriber failed to take after every retry. Fix the cause (the last error says what it was), then replay them.")),
      h("div", { class: "head-actions" }, refresh, replayAll)),
    topErrors, notice, listSlot);

  async function act(button, label, work, said) {
    return pending(button, label, async () => {
      topErrors.replaceChildren();
      try {
        const answer = await work();
        notice.textContent = said(answer);
        await load();
      } catch (e) {
        const slot = button.closest("tr")?.querySelector(".row-error") || topErrors;
        slot.replaceChildren(errorBox(e));
      }
    });
  }

  refresh.addEventListener("click", () => pending(refresh, "Refreshing…", () => { notice.textContent = ""; return load(); }));
  replayAll?.addEventListener("click", () => act(replayAll, "Replaying…",
    () => post("/api/admin/events/dead-letters/replay"),
    (a) => `${a.replayed} ${a.replayed === 1 ? "delivery" : "deliveries"} sent back to be delivered again.`));

  function row(d) {
    const payload = h("details", { class: "payload" }, h("summary", {}, "Payload"), h("pre", {}, d.payload));
    const actions = h("td", { class: "actions", "data-label": "Actions" });
    if (canManage) {
      const replay = h("button", { type: "button", class: "primary small", dataset: { action: "replay" } }, "Replay");
      replay.addEventListener("click", () => act(replay, "Replaying…",
        () => post(`/api/admin/events/dead-letters/${d.id}/replay`),
        () => `Delivery ${d.id} (${d.topic} to ${d.subscriber}) sent back to be delivered again.`));
      const discard = h("button", { type: "button", class: "danger small", dataset: { action: "discard" } }, "Discard");
      discard.addEventListener("click", async () => {
        const ok = await confirmDialog({
          title: `Discard delivery ${d.id}?`,
          body: [h("p", {}, `${d.subscriber} will never receive this ${d.topic} event. The event stays delivered to every other subscriber.`)],
          confirm: "Discard",
          danger: true,
        });
        if (ok) act(discard, "Discarding…", () => del(`/api/admin/events/dead-letters/${d.id}`), () => `Delivery ${d.id} discarded.`);
      });
      actions.append(replay, discard);
    }
    actions.append(h("div", { class: "row-error" }));
    return h("tr", { dataset: { deadLetter: String(d.id) } },
      h("th", { scope: "row", "data-label": "Topic" }, h("div", { class: "name mono" }, d.topic), h("div", { class: "muted small" }, `from ${d.source}`)),
      h("td", { "data-label": "Subscriber" }, d.subscriber),
      h("td", { "data-label": "Attempts" }, badge(String(d.attempts), "bad")),
      h("td", { "data-label": "Last error", class: "error dead-error" }, d.last_error || "—", payload),
      h("td", { "data-label": "Published" }, when(d.published_at)),
      actions);
  }

  async function load() {
    let list;
    try {
      list = await get("/api/admin/events/dead-letters?limit=1000");
    } catch (e) {
      listSlot.replaceChildren(errorBox(e));
      return;
    }
    if (replayAll) replayAll.hidden = list.length === 0;
    if (list.length === 0) {
      listSlot.replaceChildren(empty("No dead letters.", "Every event reached its subscribers. A delivery that keeps failing lands here after its last retry."));
      return;
    }
    listSlot.replaceChildren(h("div", { class: "table-wrap" }, h("table", { class: "dead-letters stacked" },
      h("thead", {}, h("tr", {}, ["Topic", "Subscriber", "Attempts", "Last error", "Published", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, list.map(row)))));
  }

  load();
}
