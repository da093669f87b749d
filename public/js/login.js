// The sign-in page (seed 002's flow): user name and password to
// POST /api/auth/login, the server's own message for a wrong password, a
// locked account or too many attempts, then back to the page that was
// asked for, but only if that is a path on this host (no open redirect).

import { ApiError, errorFrom } from "./api.js";
import { errorBox, pending } from "./ui.js";

// `next` if it is a path on this origin, else the shell's front page.
// The host's `safe_next` applies the same rule to the `next` it sends here.
export function safeNext(raw) {
  if (!raw || !raw.startsWith("/") || raw.startsWith("//") || raw.includes("\\") || /[\u0000-\u001f\u007f]/.test(raw)) return "/";
  let url;
  try { url = new URL(raw, location.origin); } catch { return "/"; }
  if (url.origin !== location.origin || url.pathname === "/login.html") return "/";
  return url.pathname + url.search + url.hash;
}

// A browser keeps the fragment across the host's redirect to this page
// (the server never sees it), so `/#/p/goods/` arrives as
// `/login.html?next=%2F#/p/goods/`: put it back on `next`.
let next = safeNext(new URLSearchParams(location.search).get("next"));
if (location.hash.startsWith("#/") && !next.includes("#")) next += location.hash;

function explain(error) {
  if (error.status === 429) {
    const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : "";
    return new ApiError(429, error.code, `${error.message}${wait}`, error.requestId);
  }
  return error;
}

const form = document.getElementById("login-form");
const slot = document.getElementById("login-error");
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  slot.replaceChildren();
  const login = form.login.value.trim();
  const password = form.password.value;
  if (!login || !password) {
    slot.replaceChildren(errorBox({ message: !login ? "Enter your user name." : "Enter your password." }));
    (!login ? form.login : form.password).focus();
    return;
  }
  await pending(document.getElementById("login-button"), "Signing in…", async () => {
    let response;
    try {
      response = await fetch("/api/auth/login", {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ login, password }),
      });
    } catch {
      slot.replaceChildren(errorBox({ message: "The host did not answer. Check that it is running and try again." }));
      return;
    }
    if (response.ok) {
      location.replace(next);
      return;
    }
    slot.replaceChildren(errorBox(explain(await errorFrom(response))));
    form.password.select();
  });
});
