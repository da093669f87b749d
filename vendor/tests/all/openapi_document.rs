//! The vendor's OpenAPI document, served at `/api/openapi.json`, lists
//! exactly the routes of the vendor's router, each with its methods, so
//! neither can change without the other. (Whether the answers match the
//! document is checked by schemathesis in `cargo xtask openapi-check`.)

use std::collections::{BTreeSet, HashMap};

use plinth_package::VendorKey;
use plinth_vendor::http::openapi::OPENAPI;
use plinth_vendor::http::{self, AppState, ServerOptions};
use reqwest::StatusCode;

use crate::support::{DbKind, TestDb, TestVendor, http as client};

/// `(METHOD, path)` of every route of `router`, paths in OpenAPI form
/// (`{*rest}` becomes `{rest}`), `ANY` for a route taking every method.
///
/// axum has no public way to list a built router's routes, but its
/// `Debug` output holds them: each route id with its path, and each route
/// id's method router with the `Allow` header it answers 405 with. The
/// host's `openapi_document` test reads its router the same way. If a new
/// axum prints them differently this finds nothing and the test says so
/// instead of passing.
fn router_routes(router: &axum::Router) -> BTreeSet<(String, String)> {
    let text = format!("{router:?}");
    let text = text.split("fallback_router:").next().unwrap_or_default();
    let mut paths = HashMap::new();
    let mut methods = HashMap::new();
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
            let list: Vec<String> = if allow.starts_with("Skip") {
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
fn documented(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
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

#[tokio::test]
async fn every_route_of_the_router_is_in_the_served_openapi_document_and_back() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let tv = TestVendor::new(db).await;
    let key = VendorKey::from_hex(&tv.key.to_hex()).expect("key copy");
    let router = http::app(AppState::new(
        tv.vendor.clone(),
        key,
        ServerOptions::default(),
    ));
    let served = router_routes(&router);
    assert!(
        served.len() >= 6 && served.contains(&("GET".into(), "/api/agent".into())),
        "read only {} routes from the router's Debug output; has axum changed how it prints them? {served:?}",
        served.len()
    );

    // The document as a client gets it from a running server.
    let server = tv.serve().await;
    let response = client()
        .get(format!("http://{}/api/openapi.json", server.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        doc,
        serde_json::from_str::<serde_json::Value>(OPENAPI).unwrap()
    );

    let described = documented(&doc);
    let undocumented: Vec<_> = served.difference(&described).collect();
    let unserved: Vec<_> = described.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from vendor/src/http/openapi.json: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "vendor/src/http/openapi.json describes routes the router does not have: {unserved:?}"
    );
    server.shutdown().await.unwrap();
}
