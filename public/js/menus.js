// The navigation tree from GET /api/menus: every enabled plugin's menus,
// nested by `parent`, in the order the host sent them (`order`, then
// title), without the entries the user's permissions do not open.

// Menus as a tree: children under their parent, each level in the order the
// host sent (by `order`, then title); a child whose parent is hidden is
// hidden with it.
export function menuTree(menus, can) {
  const visible = menus.filter((m) => can(m.permission));
  const key = (m) => `${m.plugin}/${m.id}`;
  const byKey = new Map(visible.map((m) => [key(m), { ...m, children: [] }]));
  const roots = [];
  for (const m of visible) {
    const node = byKey.get(key(m));
    if (!m.parent) roots.push(node);
    else byKey.get(`${m.plugin}/${m.parent}`)?.children.push(node);
  }
  return roots;
}
