// Who is signed in and what they may do: GET /api/auth/me answers the user
// and their permission codes (a super-admin holds them all); without a
// session it answers 401 and the page goes to sign in.

import { ApiError, get, post, signInUrl } from "./api.js";

// The permission each admin action needs; the host checks the same codes.
export const NEEDS = {
  viewPlugins: "plugins.view",
  install: "plugins.install",
  rollback: "plugins.rollback",
  enable: "plugins.enable",
  disable: "plugins.enable",
  remove: "plugins.remove",
  viewAgent: "agent.view",
  reconnectAgent: "agent.manage",
  manageUsers: "users.manage",
  manageRoles: "roles.manage",
  manageTokens: "tokens.manage",
  viewAudit: "audit.view",
  configure: "plugins.configure",
  viewTasks: "tasks.view",
  manageTasks: "tasks.manage",
  viewEvents: "events.view",
  manageEvents: "events.manage",
};

export class Session {
  constructor({ login, name, roles, permissions, superAdmin }) {
    Object.assign(this, { login, name, roles, superAdmin });
    this.permissions = new Set(permissions);
  }

  can(code) {
    return !code || this.superAdmin || this.permissions.has(code);
  }
}

function fromMe(me) {
  return new Session({
    login: me.login,
    name: me.display_name || me.login,
    roles: me.roles || [],
    permissions: me.permissions || [],
    superAdmin: Boolean(me.super_admin),
  });
}

// The current session, or a redirect to the sign-in page.
export async function currentSession() {
  try {
    return fromMe(await get("/api/auth/me"));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      location.replace(signInUrl());
      return new Promise(() => {}); // the page is going away
    }
    throw e;
  }
}

export async function signOut() {
  try { await post("/api/auth/logout"); } catch { /* signed out either way */ }
  location.assign("/login.html");
}
