// The admin web shell: lists installed plugins and their menus, and opens a
// plugin's page beside the menu. Text is always set with textContent, so a
// plugin's manifest cannot inject markup here.
"use strict";

async function getJson(path) {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = body.error ? body.error.message : response.statusText;
    throw new Error(`${path}: ${message}`);
  }
  return body;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function open(path, link) {
  const view = document.getElementById("view");
  view.hidden = false;
  view.src = path;
  document.querySelectorAll("nav a").forEach((a) => a.classList.remove("active"));
  if (link) link.classList.add("active");
}

async function loadHealth() {
  const badge = document.getElementById("health");
  try {
    const health = await getJson("/healthz");
    badge.textContent = `healthy · ${health.plugins} plugins`;
    badge.className = "badge ok";
  } catch (e) {
    badge.textContent = "unhealthy";
    badge.className = "badge bad";
  }
}

async function loadPlugins() {
  const body = document.querySelector("#plugins tbody");
  try {
    const plugins = await getJson("/api/plugins");
    body.replaceChildren();
    for (const p of plugins) {
      const row = document.createElement("tr");
      row.dataset.plugin = p.name;
      cell(row, p.forked_from ? `${p.name} (fork of ${p.forked_from})` : p.name);
      cell(row, p.version);
      cell(row, p.world);
      const mount = cell(row, "");
      const a = document.createElement("a");
      a.href = p.mount_path;
      a.textContent = p.mount_path;
      a.addEventListener("click", (e) => { e.preventDefault(); open(p.mount_path); });
      mount.appendChild(a);
      cell(row, p.tasks.join(", ") || "—");
      body.appendChild(row);
    }
    if (plugins.length === 0) {
      const row = document.createElement("tr");
      cell(row, "No plugins installed.").colSpan = 5;
      body.appendChild(row);
    }
  } catch (e) {
    body.replaceChildren();
    const row = document.createElement("tr");
    const td = cell(row, e.message);
    td.colSpan = 5;
    td.className = "error";
    body.appendChild(row);
  }
}

async function loadMenus() {
  const nav = document.getElementById("menu");
  try {
    const menus = await getJson("/api/menus");
    nav.replaceChildren();
    for (const m of menus.filter((m) => !m.parent)) {
      const a = document.createElement("a");
      a.href = m.path;
      a.dataset.menu = m.id;
      a.textContent = m.title;
      const tag = document.createElement("div");
      tag.className = "plugin";
      tag.textContent = m.plugin;
      a.appendChild(tag);
      a.addEventListener("click", (e) => { e.preventDefault(); open(m.path, a); });
      nav.appendChild(a);
    }
    if (menus.length === 0) nav.textContent = "No menus.";
  } catch (e) {
    nav.textContent = e.message;
    nav.className = "error";
  }
}

loadHealth();
loadPlugins();
loadMenus();
