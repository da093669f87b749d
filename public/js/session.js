// Who is signed in and what they may do. The host answers GET /api/auth/me
// with the user and their permission codes; a host without user accounts
// yet answers 404 there, and then an access token (the bootstrap admin
// token or a service token) is the only way in and stands for its holder.

import { ApiError, accessToken, get, post, setAccessToken, signInUrl } from "./api.js";

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
};

export class Session {
  constructor({ login, name, roles, permissions, superAdmin, viaToken }) {
    Object.assign(this, { login, name, roles, superAdmin, viaToken });
    this.permissions = new Set(permissions);
  }

  can(code) {
    return !code || this.superAdmin || this.permissions.has(code);
  }
}

function fromMe(me) {
  const user = me.user || me;
  const roles = user.roles || me.roles || [];
  return new Session({
    login: user.login,
    name: user.display_name || user.login,
    roles,
    permissions: me.permissions || user.permissions || [],
    superAdmin: Boolean(me.super_admin || user.super_admin || roles.includes("super-admin")),
    viaToken: false,
  });
}

// The current session, or a redirect to the sign-in page.
export async function currentSession() {
  try {
    return fromMe(await get("/api/auth/me"));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && accessToken()) {
      // No accounts on this host: the token is checked by using it.
      await get("/api/admin/plugins");
      return new Session({ login: "token", name: "Administrator (token)", roles: ["super-admin"], permissions: [], superAdmin: true, viaToken: true });
    }
    if (e instanceof ApiError && (e.status === 401 || e.status === 404)) {
      setAccessToken(null);
      location.replace(signInUrl());
      return new Promise(() => {}); // the page is going away
    }
    throw e;
  }
}

export async function signOut(session) {
  if (!session.viaToken) {
    try { await post("/api/auth/logout"); } catch { /* signed out either way */ }
  }
  setAccessToken(null);
  location.assign("/login.html");
}
