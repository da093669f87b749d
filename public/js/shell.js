// The shell: header (user, sign-out, health, live feed), the navigation
// tree merged from every enabled plugin's menus and filtered by the user's
// permissions, and the page area. Routes live in the URL's hash so every
// view is bookmarkable and survives a reload: `#/p/<plugin>/…` shows that
// plugin page in a same-origin frame, the routes of `HOST_PAGES`
// (`#/plugins`, `#/users`, …) are the host's own pages.

import { get, signInUrl } from "./api.js";
import { menuTree } from "./menus.js";
import { live, connectLive } from "./live.js";
import { NEEDS, currentSession, signOut } from "./session.js";
import { badge, errorBox, h, pending } from "./ui.js";
import { overviewPage } from "./pages/overview.js";
import { pluginsPage } from "./pages/plugins.js";
import { agentPage } from "./pages/agent.js";
import { usersPage } from "./pages/users.js";
import { rolesPage } from "./pages/roles.js";
import { tokensPage } from "./pages/tokens.js";
import { auditPage } from "./pages/audit.js";
import { tasksPage } from "./pages/tasks.js";
import { eventsPage } from "./pages/events.js";
import { settingsPage } from "./pages/settings.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let session;
let frame; // the plugin page frame, kept across plugin routes
let leaveCurrent = () => {};

const HOST_PAGES = [
  { route: "/", title: "Overview", page: overviewPage },
  { route: "/plugins", title: "Plugins", page: pluginsPage, needs: NEEDS.viewPlugins },
  { route: "/agent", title: "Upgrade agent", page: agentPage, needs: NEEDS.viewAgent },
  { route: "/users", title: "Users", page: usersPage, needs: NEEDS.manageUsers },
  { route: "/roles", title: "Roles", page: rolesPage, needs: NEEDS.manageRoles },
  { route: "/tokens", title: "Service tokens", page: tokensPage, needs: NEEDS.manageTokens },
  { route: "/audit", title: "Audit log", page: auditPage, needs: NEEDS.viewAudit },
  { route: "/settings", title: "Plugin settings", page: settingsPage, needs: NEEDS.viewPlugins },
  { route: "/tasks", title: "Tasks", page: tasksPage, needs: NEEDS.viewTasks },
  { route: "/dead-letters", title: "Dead letters", page: eventsPage, needs: NEEDS.viewEvents },
];

function route() {
  const hash = location.hash.replace(/^#/, "");
  return hash === "" ? "/" : hash;
}

function menuList(nodes) {
  return h("ul", { role: "list" }, nodes.map((n) => h("li", {},
    n.path.startsWith("/p/")
      ? h("a", { href: `#${n.path}`, dataset: { menu: `${n.plugin}/${n.id}` } }, n.title)
      : h("span", { class: "group" }, n.title),
    n.children.length ? menuList(n.children) : null)));
}

async function renderNav() {
  const hostLinks = HOST_PAGES.filter((p) => session.can(p.needs))
    .map((p) => h("li", {}, h("a", { href: `#${p.route}` }, p.title)));
  const pluginSection = h("div", { class: "nav-section", id: "plugin-menus" },
    h("h2", {}, "Applications"), h("p", { class: "muted small" }, "Loading menus…"));
  nav.replaceChildren(pluginSection,
    h("div", { class: "nav-section" }, h("h2", {}, "Administration"), h("ul", { role: "list" }, hostLinks)));
  try {
    const menus = await get("/api/menus");
    const tree = menuTree(menus, (code) => session.can(code));
    const none = menus.length ? "None of the plugin menus is open to you." : "No plugin has a menu yet.";
    pluginSection.replaceChildren(h("h2", {}, "Applications"),
      tree.length ? menuList(tree) : h("p", { class: "muted small" }, none));
  } catch (e) {
    pluginSection.replaceChildren(h("h2", {}, "Applications"), errorBox(e));
  }
  markActive();
}

function markActive() {
  const current = route();
  let best = null;
  for (const a of nav.querySelectorAll("a")) {
    const target = a.getAttribute("href").slice(1);
    a.removeAttribute("aria-current");
    const matches = target === current || (target !== "/" && current.startsWith(target));
    if (matches && (!best || target.length > best.getAttribute("href").length - 1)) best = a;
  }
  best?.setAttribute("aria-current", "page");
}

function pluginFrame(path) {
  if (!frame) {
    frame = h("iframe", { id: "plugin-frame", title: "Plugin page" });
    // Keeps the address bar on the page the plugin navigated to.
    frame.addEventListener("load", () => {
      let inner;
      try { inner = frame.contentWindow.location; } catch { return; }
      // The session ended and the host sent the frame to sign in: sign in
      // in the whole window, coming back to this plugin page.
      if (inner.pathname === "/login.html") { location.assign(signInUrl()); return; }
      const now = inner.pathname + inner.search;
      if (now.startsWith("/p/") && route() !== now) history.replaceState(null, "", `#${now}`);
      markActive();
      document.title = `${frame.contentDocument?.title || "Plugin"} · Plinth`;
    });
  }
  const current = (() => { try { const l = frame.contentWindow.location; return l.pathname + l.search; } catch { return null; } })();
  if (current !== path) frame.src = path;
  return frame;
}

function render() {
  leaveCurrent();
  leaveCurrent = () => {};
  const r = route();
  document.body.classList.remove("nav-open");
  if (r.startsWith("/p/")) {
    main.classList.add("framed");
    main.replaceChildren(pluginFrame(r));
  } else {
    main.classList.remove("framed");
    const page = HOST_PAGES.find((p) => p.route === r);
    if (!page) {
      main.replaceChildren(h("section", { class: "page" }, h("h1", {}, "Page not found"),
        h("p", {}, "Nothing lives at this address. "), h("a", { href: "#/" }, "Go to the overview")));
    } else if (!session.can(page.needs)) {
      main.replaceChildren(h("section", { class: "page" }, h("h1", {}, page.title),
        h("p", {}, `You do not have the permission ${page.needs} this page needs; ask an administrator.`)));
    } else {
      document.title = `${page.title} · Plinth`;
      const section = h("section", { class: "page" });
      main.replaceChildren(section);
      leaveCurrent = page.page(section, session) || (() => {});
    }
  }
  markActive();
  main.focus({ preventScroll: true });
}

function renderHeader() {
  const liveBadge = badge("offline", "");
  liveBadge.id = "live-state";
  live.addEventListener("status", (e) => {
    const labels = { live: ["live", "ok"], connecting: ["connecting…", "warn"], reconnecting: ["reconnecting…", "warn"], off: ["offline", ""] };
    const [text, tone] = labels[e.detail];
    liveBadge.textContent = text;
    liveBadge.className = `badge ${tone}`;
    liveBadge.title = "Live progress from the host";
  });
  const signOutButton = h("button", { type: "button", class: "secondary small", id: "sign-out", onclick: (e) => pending(e.target, "Signing out…", signOut) }, "Sign out");
  // The feed behind the badge needs plugins.view: without it there is no
  // feed to be live or offline, so no badge.
  const feed = session.can(NEEDS.viewPlugins) ? [liveBadge] : [];
  document.getElementById("user").replaceChildren(
    h("span", { class: "user-name", id: "user-name", title: session.login }, session.name),
    ...feed, signOutButton);
  document.getElementById("nav-toggle").addEventListener("click", () => document.body.classList.toggle("nav-open"));
}

async function start() {
  try {
    session = await currentSession();
  } catch (e) {
    main.replaceChildren(h("section", { class: "page" }, h("h1", {}, "The host could not be reached"), errorBox(e)));
    return;
  }
  renderHeader();
  renderNav();
  render();
  window.addEventListener("hashchange", render);
  // The menus are those of the enabled plugins: redraw when that changes.
  live.addEventListener("journal", (e) => {
    if (["done", "failed", "recovered"].includes(e.detail.step)) renderNav();
  });
  // The stream needs plugins.view (agent events also need agent.view).
  if (session.can(NEEDS.viewPlugins)) connectLive();
}

start();
