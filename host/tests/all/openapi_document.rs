//! The OpenAPI document at `/api/openapi.json` lists exactly the routes
//! the host's router serves, each with its methods, so neither can change
//! without the other. (Whether the answers match the document is checked
//! by schemathesis in `cargo xtask openapi-check`.)

use std::collections::BTreeSet;
use std::sync::Arc;

use plinth_host::config::Config;
use plinth_host::http::admin::OPENAPI;
use plinth_host::http::{AppState, app};

/// `(METHOD, path)` of every route of `router`, paths in OpenAPI form
/// (`{*rest}` becomes `{rest}`), `ANY` for a route taking every method.
///
/// axum has no public way to list a built router's routes, but its
/// `Debug` output holds them: each route id with its path, and each route
/// id's method router with the `Allow` header it answers 405 with. Read
/// from the router the server runs, merging and nesting included. If a
/// new axum prints them differently this finds nothing and the test says
/// so instead of passing.
fn router_routes(router: &axum::Router) -> BTreeSet<(String, String)> {
    let text = format!("{router:?}");
    let text = text.split("fallback_router:").next().unwrap_or_default();
    let mut paths = std::collections::HashMap::new();
    let mut methods = std::collections::HashMap::new();
    for piece in text.split("RouteId(").skip(1) {
        let Some((id, rest)) = piece.split_once("): ") else {
            continue;
        };
        if let Some(path) = rest.strip_prefix('"') {
            let path = path.split('"').next().unwrap_or_default();
            paths.insert(id.to_owned(), path.replace("{*", "{"));
        } else if rest.starts_with("MethodRouter(") {
            let allow = rest
                .split_once("allow_header: ")
                .map(|(_, a)| a)
                .unwrap_or_default();
            let list = if allow.starts_with("Skip") {
                vec!["ANY".to_owned()]
            } else {
                allow
                    .strip_prefix("Bytes(b\"")
                    .and_then(|a| a.split('"').next())
                    .unwrap_or_default()
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            methods.insert(id.to_owned(), list);
        }
    }
    let mut routes = BTreeSet::new();
    for (id, path) in &paths {
        let list = methods.get(id).cloned().unwrap_or_default();
        let has_get = list.iter().any(|m| m == "GET");
        for method in list {
            // axum answers HEAD on every GET route; OpenAPI leaves it implied.
            if method == "HEAD" && has_get {
                continue;
            }
            routes.insert((method, path.clone()));
        }
    }
    routes
}

/// `(METHOD, path)` of every operation in an OpenAPI document.
fn documented(doc: &str) -> BTreeSet<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(doc).expect("the document is JSON");
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if method != "parameters" && method != "summary" && method != "description" {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn every_route_of_the_router_is_in_the_openapi_document_and_back() {
    let router = app(AppState::starting(Arc::new(Config::default())));
    // Plugin routes (`/p/{*path}`, every method) are the plugins' own API:
    // the document describes them as one pattern, not route by route.
    let is_plugin_route = |path: &str| path.starts_with("/p/");
    let served: BTreeSet<_> = router_routes(&router)
        .into_iter()
        .filter(|(_, path)| !is_plugin_route(path))
        .collect();
    assert!(
        served.len() > 40 && served.contains(&("GET".into(), "/api/admin/plugins".into())),
        "read only {} routes from the router's Debug output; has axum changed how it prints them? {served:?}",
        served.len()
    );
    let described: BTreeSet<_> = documented(OPENAPI)
        .into_iter()
        .filter(|(_, path)| !is_plugin_route(path))
        .collect();
    let undocumented: Vec<_> = served.difference(&described).collect();
    let unserved: Vec<_> = described.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from host/src/http/openapi.json: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "host/src/http/openapi.json describes routes the router does not have: {unserved:?}"
    );
}
