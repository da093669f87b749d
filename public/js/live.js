// The host's live feed (GET /api/admin/operations/stream, server-sent
// events), read with fetch (not EventSource) so a refusal (401/403) stops
// the retries instead of reconnecting forever. Events are
// re-dispatched on `live` as `journal`, `agent` and `resync`; the stream
// reconnects with back-off when it ends, and says so through `status`.

export const live = new EventTarget();
let state = "off";

function setState(next) {
  state = next;
  live.dispatchEvent(new CustomEvent("status", { detail: next }));
}

export function liveState() { return state; }

function dispatch(block) {
  let kind = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) kind = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (data.length === 0) return; // a keep-alive comment
  let detail;
  try { detail = JSON.parse(data.join("\n")); } catch { return; }
  live.dispatchEvent(new CustomEvent(kind, { detail }));
}

export async function connectLive() {
  let delay = 1000;
  for (;;) {
    setState("connecting");
    try {
      const response = await fetch("/api/admin/operations/stream", {
        credentials: "same-origin",
        headers: { accept: "text/event-stream" },
      });
      if (response.status === 401 || response.status === 403) { setState("off"); return; }
      if (!response.ok || !response.body) throw new Error(`status ${response.status}`);
      setState("live");
      delay = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch { /* reconnect below */ }
    setState("reconnecting");
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 15000);
  }
}
