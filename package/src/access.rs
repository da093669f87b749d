//! What a plugin declares about access in `plugin.toml`: its API routes
//! (`[[routes]]`: method and path pattern → a permission code, or public),
//! its buttons (`[[buttons]]`: codes its pages and handlers check), the
//! naming rule for codes, and the compiled [`RouteTable`] the host asks
//! before every plugin request.
//!
//! Codes are namespaced by the plugin's name: permission codes start with
//! `<name>.` (`goods.items.read`) and button codes with `B_<NAME>_`
//! (`B_GOODS_ITEM_DELETE`, the name upper-cased with `-` as `_`), so two
//! plugins never declare the same code and removing one drops exactly its
//! grants. A fork (`forked_from = "goods"`, named `goods-acme`) declares
//! its own codes under its own name (`goods-acme.items.read`,
//! `B_GOODS_ACME_ITEM_DELETE`); the code it runs is the parent's, so a
//! code it asks the host about under the parent's name is read as the
//! fork's own ([`own_code`]).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// An API route a plugin declares: requests matching `method` and `path`
/// need `permission`, or nobody needs anything when `public` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// An upper-case HTTP method, or `*` for any.
    #[serde(default = "any_method")]
    pub method: String,
    /// A pattern for the path below the plugin's mount point: literal
    /// segments, `{name}` for exactly one segment, and a final `*` for any
    /// rest (e.g. `/api/items/{id}`, `/api/*`).
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub public: bool,
}

/// A button (or any action) the plugin checks with `has-permission`; its
/// code is a grantable permission code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Button {
    pub code: String,
    pub title: String,
    /// The menu entry the button appears on, for an admin page to group by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu: Option<String>,
    #[serde(default)]
    pub default_roles: Vec<String>,
}

fn any_method() -> String {
    "*".into()
}

fn is_false(b: &bool) -> bool {
    !*b
}

const METHODS: &[&str] = &[
    "*", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
];

/// The `B_<NAME>_` prefix of a plugin's button codes.
pub fn button_prefix(plugin: &str) -> String {
    format!("B_{}_", plugin.replace('-', "_").to_ascii_uppercase())
}

/// Why `code` is not a code plugin `plugin` may declare, if it is not.
pub fn code_problem(plugin: &str, code: &str, button: bool) -> Option<String> {
    if button {
        let prefix = button_prefix(plugin);
        let rest = code.strip_prefix(&prefix);
        let ok = rest.is_some_and(|r| {
            !r.is_empty()
                && r.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        });
        (!ok).then(|| {
            format!(
                "{code:?} is not a button code of this plugin: expected {prefix} followed by upper-case letters, digits or '_' (e.g. \"{prefix}ITEM_DELETE\")"
            )
        })
    } else {
        let prefix = format!("{plugin}.");
        let rest = code.strip_prefix(&prefix);
        let ok = rest.is_some_and(|r| {
            !r.is_empty()
                && r.split('.').all(|part| {
                    part.starts_with(|c: char| c.is_ascii_lowercase())
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                })
        });
        (!ok).then(|| {
            format!(
                "{code:?} is not a permission code of this plugin: expected {prefix:?} followed by dotted lowercase names (e.g. \"{prefix}items.read\")"
            )
        })
    }
}

/// Why `role` is not a role name a manifest may grant to, if it is not.
pub fn role_problem(role: &str) -> Option<String> {
    let ok = (1..=64).contains(&role.len())
        && role.starts_with(|c: char| c.is_ascii_lowercase())
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    (!ok).then(|| {
        format!(
            "{role:?} is not a role name: expected a lowercase letter, then letters, digits, '-' or '_', at most 64 characters (e.g. \"clerk\")"
        )
    })
}

/// The code a plugin means when it asks about `code`: a fork runs its
/// parent's code, which names the parent's codes; those are read as the
/// fork's own (`goods.items.read` → `goods-acme.items.read`,
/// `B_GOODS_ITEM_DELETE` → `B_GOODS_ACME_ITEM_DELETE`). Anything else is
/// left as it is, so a fork never gains a check on its parent's grants.
pub fn own_code<'a>(plugin: &str, forked_from: Option<&str>, code: &'a str) -> Cow<'a, str> {
    let Some(parent) = forked_from else {
        return Cow::Borrowed(code);
    };
    if let Some(rest) = code.strip_prefix(parent).and_then(|r| r.strip_prefix('.')) {
        return Cow::Owned(format!("{plugin}.{rest}"));
    }
    if let Some(rest) = code.strip_prefix(&button_prefix(parent)) {
        return Cow::Owned(format!("{}{rest}", button_prefix(plugin)));
    }
    Cow::Borrowed(code)
}

/// One segment of a compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: any one non-empty segment.
    Param,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    segments: Vec<Segment>,
    /// Ends in `*`: matches any rest, including none.
    rest: bool,
}

/// Compiles a route path pattern; the error says what is wrong with it.
fn compile(path: &str) -> Result<Pattern, String> {
    let Some(below) = path.strip_prefix('/') else {
        return Err(format!(
            "{path:?} must start with '/' (the path below the plugin's mount point, e.g. \"/api/items\")"
        ));
    };
    let parts: Vec<&str> = below.split('/').collect();
    let mut segments = Vec::with_capacity(parts.len());
    let mut rest = false;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if *part == "*" {
            if !last {
                return Err(format!(
                    "{path:?}: '*' may only be the last segment (it matches the rest of the path)"
                ));
            }
            rest = true;
        } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!(
                    "{path:?}: {part:?} is not a parameter; write {{name}} with letters, digits or '_'"
                ));
            }
            segments.push(Segment::Param);
        } else if part.contains(['{', '}', '*', '?', '#', '%'])
            || *part == "."
            || *part == ".."
            || (part.is_empty() && !last)
        {
            return Err(format!(
                "{path:?}: segment {part:?} is not allowed; use literal names, {{name}} or a final '*'"
            ));
        } else {
            segments.push(Segment::Literal((*part).to_owned()));
        }
    }
    Ok(Pattern { segments, rest })
}

/// Why `routes` is not a valid `[[routes]]` list, as (field, reason).
/// `declared` tells whether a code is declared in `[[permissions]]` or
/// `[[buttons]]`.
pub fn routes_problem(
    routes: &[Route],
    declared: impl Fn(&str) -> bool,
) -> Option<(String, String)> {
    let mut seen: Vec<(&str, Pattern)> = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        if !METHODS.contains(&r.method.as_str()) {
            return Some((
                format!("routes[{i}].method"),
                format!(
                    "{:?} is not a method here: use one of {} (upper case; \"*\" for any)",
                    r.method,
                    METHODS.join(", ")
                ),
            ));
        }
        let pattern = match compile(&r.path) {
            Ok(p) => p,
            Err(reason) => return Some((format!("routes[{i}].path"), reason)),
        };
        match (&r.permission, r.public) {
            (Some(_), true) => {
                return Some((
                    format!("routes[{i}]"),
                    "sets both permission and public = true; a route is either public or needs one permission".into(),
                ));
            }
            (None, false) => {
                return Some((
                    format!("routes[{i}]"),
                    "needs permission = \"<code>\" or public = true; an undeclared route is denied"
                        .into(),
                ));
            }
            (Some(code), false) if !declared(code) => {
                return Some((
                    format!("routes[{i}].permission"),
                    format!("{code:?} is not declared in [[permissions]] or [[buttons]]"),
                ));
            }
            _ => {}
        }
        if seen
            .iter()
            .any(|(m, p)| *m == r.method.as_str() && *p == pattern)
        {
            return Some((
                format!("routes[{i}]"),
                format!("{} {} is declared more than once", r.method, r.path),
            ));
        }
        seen.push((r.method.as_str(), pattern));
    }
    None
}

/// What a request needs, according to the plugin's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// Anyone, signed in or not.
    Public,
    /// A caller holding this code.
    Requires(&'a str),
    /// No route covers the request: denied unless the caller bypasses
    /// every check.
    Undeclared,
}

#[derive(Debug, Clone)]
struct CompiledRoute {
    /// `None` for any method.
    method: Option<String>,
    pattern: Pattern,
    /// `None` for a public route.
    permission: Option<String>,
}

/// A plugin's `[[routes]]`, compiled once when the plugin is loaded. The
/// first route matching a request decides, in declaration order.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<CompiledRoute>,
}

impl RouteTable {
    /// Compiles validated routes (a manifest from [`crate::Manifest::parse`]);
    /// a route that would not compile is left out, which denies what it
    /// would have matched.
    pub fn new(routes: &[Route]) -> Self {
        let routes = routes
            .iter()
            .filter_map(|r| {
                Some(CompiledRoute {
                    method: (r.method != "*").then(|| r.method.clone()),
                    pattern: compile(&r.path).ok()?,
                    permission: if r.public {
                        None
                    } else {
                        Some(r.permission.clone()?)
                    },
                })
            })
            .collect();
        Self { routes }
    }

    /// What a `method` request for `path` (below the mount point, starting
    /// with '/', without the query) needs.
    pub fn access(&self, method: &str, path: &str) -> Access<'_> {
        let Some(below) = path.strip_prefix('/') else {
            return Access::Undeclared;
        };
        // A dot segment, plain or percent-encoded, could make a plugin that
        // normalizes paths serve a route other than the one checked.
        let dotted = below.split('/').any(|s| {
            let s = s.to_ascii_lowercase().replace("%2e", ".");
            s == "." || s == ".."
        });
        if dotted {
            return Access::Undeclared;
        }
        for route in &self.routes {
            // HEAD is GET without the body: a GET route covers it.
            if route
                .method
                .as_deref()
                .is_some_and(|m| m != method && !(m == "GET" && method == "HEAD"))
            {
                continue;
            }
            if matches(&route.pattern, below) {
                return match &route.permission {
                    None => Access::Public,
                    Some(code) => Access::Requires(code),
                };
            }
        }
        Access::Undeclared
    }
}

fn matches(pattern: &Pattern, below: &str) -> bool {
    let mut parts = below.split('/');
    for segment in &pattern.segments {
        match (segment, parts.next()) {
            (Segment::Literal(lit), Some(part)) if lit == part => {}
            (Segment::Param, Some(part)) if !part.is_empty() => {}
            _ => return false,
        }
    }
    pattern.rest || parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str, permission: Option<&str>) -> Route {
        Route {
            method: method.into(),
            path: path.into(),
            permission: permission.map(Into::into),
            public: permission.is_none(),
        }
    }

    #[test]
    fn first_matching_route_decides_and_the_rest_is_undeclared() {
        let table = RouteTable::new(&[
            route("GET", "/api/status", None),
            route("GET", "/api/items", Some("goods.items.read")),
            route("GET", "/api/items/{id}", Some("goods.items.read")),
            route("*", "/api/*", Some("goods.items.write")),
        ]);
        assert_eq!(table.access("GET", "/api/status"), Access::Public);
        assert_eq!(table.access("HEAD", "/api/status"), Access::Public);
        assert_eq!(
            table.access("POST", "/api/status"),
            Access::Requires("goods.items.write")
        );
        assert_eq!(
            table.access("GET", "/api/items/7"),
            Access::Requires("goods.items.read")
        );
        assert_eq!(
            table.access("POST", "/api/items"),
            Access::Requires("goods.items.write")
        );
        assert_eq!(
            table.access("DELETE", "/api/items/7/x"),
            Access::Requires("goods.items.write")
        );
        assert_eq!(table.access("GET", "/"), Access::Undeclared);
        assert_eq!(table.access("GET", "/apix"), Access::Undeclared);
        assert_eq!(
            table.access("GET", "/api/items/"),
            Access::Requires("goods.items.write")
        );
        assert_eq!(
            table.access("GET", "/api/status/../items"),
            Access::Undeclared
        );
        assert_eq!(table.access("GET", "/api/%2E%2e/admin"), Access::Undeclared);
        assert_eq!(RouteTable::default().access("GET", "/"), Access::Undeclared);
    }

    #[test]
    fn codes_live_under_the_plugin_name() {
        assert!(code_problem("goods", "goods.items.read", false).is_none());
        assert!(code_problem("goods", "goods.items.read", true).is_some());
        assert!(code_problem("goods", "hello.items", false).is_some());
        assert!(code_problem("goods", "goodsx.items", false).is_some());
        assert!(code_problem("goods", "goods.", false).is_some());
        assert!(code_problem("goods-acme", "B_GOODS_ACME_ITEM_DELETE", true).is_none());
        assert!(code_problem("goods-acme", "B_GOODS_ITEM_DELETE", true).is_some());
        assert!(code_problem("goods", "B_GOODS_item", true).is_some());
    }

    #[test]
    fn a_fork_reads_its_parents_codes_as_its_own() {
        let own = |code| own_code("goods-acme", Some("goods"), code).into_owned();
        assert_eq!(own("goods.items.read"), "goods-acme.items.read");
        assert_eq!(own("B_GOODS_ITEM_DELETE"), "B_GOODS_ACME_ITEM_DELETE");
        assert_eq!(own("hello.x"), "hello.x");
        assert_eq!(
            own_code("goods", None, "goods.items.read"),
            "goods.items.read"
        );
    }

    #[test]
    fn route_problems_name_the_field() {
        let declared = |c: &str| c == "goods.items.read";
        let field = |routes: &[Route]| routes_problem(routes, declared).map(|(f, _)| f);
        assert_eq!(
            field(&[route("GET", "/api/items", Some("goods.items.read"))]),
            None
        );
        assert_eq!(
            field(&[route("get", "/api", Some("goods.items.read"))]).as_deref(),
            Some("routes[0].method")
        );
        assert_eq!(
            field(&[route("GET", "api", Some("goods.items.read"))]).as_deref(),
            Some("routes[0].path")
        );
        assert_eq!(
            field(&[route("GET", "/a/*/b", Some("goods.items.read"))]).as_deref(),
            Some("routes[0].path")
        );
        assert_eq!(
            field(&[route("GET", "/api", Some("goods.nope"))]).as_deref(),
            Some("routes[0].permission")
        );
        assert_eq!(
            field(&[route("GET", "/api", None), route("GET", "/api", None)]).as_deref(),
            Some("routes[1]")
        );
        let mut neither = route("GET", "/api", None);
        neither.public = false;
        assert_eq!(field(&[neither]).as_deref(), Some("routes[0]"));
    }
}
