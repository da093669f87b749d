//! The check before a plugin runs: what a plugin's `[[routes]]` declare is
//! enforced against the caller before the plugin is called. A caller
//! without the code gets 403 and the plugin never ran (no row, no log
//! line); no caller gets 401 (or, for a browser page, the sign-in
//! redirect); public routes need nobody; undeclared routes are refused; and
//! the plugin never sees the `cookie` or `authorization` header. Callers
//! with grants are built from the roles the manifests' `default_roles`
//! created in the database, and handed to the router in-process as the
//! authn middleware would.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use plinth_host::caller::{Caller, CallerKind, PermissionSet};
use plinth_host::db::plugin_grants;
use plinth_host::http::{AppState, app};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{TestHost, all_dbs, test_config};

/// A user holding what `roles` are granted in the host database.
pub async fn caller_with_roles(host: &TestHost, login: &str, roles: &[&str]) -> Arc<Caller> {
    let mut codes = Vec::new();
    for role in roles {
        codes.extend(
            plugin_grants::role_codes(&host.host.db, role)
                .await
                .expect("role codes"),
        );
    }
    Arc::new(Caller {
        kind: CallerKind::User,
        id: 7,
        login: login.into(),
        display_name: login.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        data_scope: "self".into(),
        permissions: Arc::new(PermissionSet::from_codes(codes)),
    })
}

/// Sends `request` through the host's router in-process, as `caller`.
pub async fn call_as(
    host: &TestHost,
    caller: Option<Arc<Caller>>,
    mut request: http::Request<Body>,
) -> (u16, http::HeaderMap, Value) {
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
    }
    let router = app(AppState::ready(host.host.clone(), host.agent.clone()));
    let response = router.oneshot(request).await.expect("router answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn json_post(path: &str, body: &Value) -> http::Request<Body> {
    http::Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request")
}

fn get(path: &str) -> http::Request<Body> {
    http::Request::get(path)
        .body(Body::empty())
        .expect("request")
}

/// What the host logs while it is set as this thread's subscriber (the
/// test runtime runs the router and the plugin on this thread).
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

impl Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLog;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn a_caller_without_the_code_is_refused_before_the_plugin_runs() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let config = test_config(&db, data.path(), &[("goods", "1.0.0")]);
        let host = TestHost::start(config).await.expect("host starts");
        let log = CapturedLog::default();
        let _log = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_writer(log.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish(),
        );

        // goods' default_roles gave clerk read and nothing else.
        let clerk = caller_with_roles(&host, "clerk", &["clerk"]).await;
        assert_eq!(clerk.permissions.codes(), ["goods.items.read"], "{kind}");
        let (status, _, body) = call_as(
            &host,
            Some(clerk.clone()),
            json_post(
                "/p/goods/api/items",
                &json!({"sku": "C-1", "name": "Clerk's"}),
            ),
        )
        .await;
        assert_eq!(status, 403, "{kind}: {body}");
        assert_eq!(body["error"]["code"], "forbidden", "{kind}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("\"goods.items.write\""),
            "{kind}: {message}"
        );
        assert!(body["error"]["request_id"].is_string(), "{kind}: {body}");

        // The plugin never ran: no row, no log line of its.
        let (status, _, items) =
            call_as(&host, Some(clerk.clone()), get("/p/goods/api/items")).await;
        assert_eq!(status, 200, "{kind}: the clerk may read");
        assert_eq!(items, json!([]), "{kind}: nothing was created");
        assert!(
            !log.text().contains("created item"),
            "{kind}: {}",
            log.text()
        );

        // staff may write: the same request reaches the plugin, which logs.
        let staff = caller_with_roles(&host, "stocker", &["staff"]).await;
        let (status, _, body) = call_as(
            &host,
            Some(staff),
            json_post(
                "/p/goods/api/items",
                &json!({"sku": "S-1", "name": "Staff's"}),
            ),
        )
        .await;
        assert_eq!(status, 201, "{kind}: {body}");
        assert!(
            log.text().contains("created item"),
            "{kind}: the log is captured"
        );

        // Anonymous: 401 JSON for the API, the sign-in page for a browser.
        let anonymous = host
            .anonymous
            .get(host.url("/p/goods/api/items"))
            .send()
            .await
            .expect("answered");
        assert_eq!(anonymous.status(), 401, "{kind}");
        let body: Value = anonymous.json().await.expect("json");
        assert_eq!(body["error"]["code"], "unauthenticated", "{kind}");
        let page = http::Request::get("/p/goods/?sort=name")
            .header("accept", "text/html,application/xhtml+xml")
            .header("sec-fetch-mode", "navigate")
            .body(Body::empty())
            .expect("request");
        let (status, headers, _) = call_as(&host, None, page).await;
        assert_eq!(status, 303, "{kind}");
        assert_eq!(
            headers.get("location").and_then(|v| v.to_str().ok()),
            Some("/login.html?next=/p/goods/%3Fsort%3Dname"),
            "{kind}"
        );
        drop(_log);
        host.stop().await;
    }
}

#[tokio::test]
async fn public_routes_need_nobody_and_undeclared_routes_are_refused() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let config = test_config(
            &db,
            data.path(),
            &[
                ("hello", "0.1.0"),
                ("http-hello", "0.1.0"),
                ("probe", "0.1.0"),
            ],
        );
        let host = TestHost::start(config).await.expect("host starts");
        let anonymous = |path: &str| host.anonymous.get(host.url(path)).send();

        let public = anonymous("/p/hello/").await.expect("answered");
        assert_eq!(public.status(), 200, "{kind}");
        assert_eq!(public.text().await.expect("text"), "Hello from plinth");
        // The same handler behind hello.greet.
        let checked = anonymous("/p/hello/greeting").await.expect("answered");
        assert_eq!(checked.status(), 401, "{kind}");
        let clerk = caller_with_roles(&host, "clerk", &["clerk"]).await;
        let (status, _, _) = call_as(&host, Some(clerk.clone()), get("/p/hello/greeting")).await;
        assert_eq!(status, 200, "{kind}: clerk holds hello.greet");
        let nobody = caller_with_roles(&host, "nobody", &[]).await;
        let (status, _, body) = call_as(&host, Some(nobody), get("/p/hello/greeting")).await;
        assert_eq!(status, 403, "{kind}: {body}");

        // No declared route covers /nope: refused to anyone but the
        // super-admin, whom the plugin then answers itself (404).
        let (status, _, body) = call_as(&host, Some(clerk.clone()), get("/p/hello/nope")).await;
        assert_eq!(status, 403, "{kind}: {body}");
        assert_eq!(body["error"]["code"], "route_not_declared", "{kind}");
        let (status, _, _) = call_as(&host, Some(clerk), get("/p/hello/greeting/../json")).await;
        assert_eq!(status, 403, "{kind}: a dot segment is never matched");
        assert_eq!(host.get("/p/hello/nope").await.status(), 404, "{kind}");

        // A wasi:http component is checked the same way.
        let refused = anonymous("/p/http-hello/").await.expect("answered");
        assert_eq!(refused.status(), 401, "{kind}");
        assert_eq!(host.get("/p/http-hello/").await.status(), 200, "{kind}");

        // The plugin learns who is calling, never how.
        let seen: Value = host
            .client
            .get(host.url("/p/probe/headers"))
            .header("cookie", "plinth_session=secret")
            .header("x-seen", "yes")
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json");
        let names: Vec<&str> = seen
            .as_array()
            .expect("names")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(names.contains(&"x-seen"), "{kind}: {names:?}");
        assert!(!names.contains(&"cookie"), "{kind}: {names:?}");
        assert!(!names.contains(&"authorization"), "{kind}: {names:?}");
        host.stop().await;
    }
}

fn delete(path: &str) -> http::Request<Body> {
    http::Request::delete(path)
        .body(Body::empty())
        .expect("request")
}

#[tokio::test]
async fn the_delete_button_is_checked_by_the_handler_through_has_permission() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let config = test_config(
            &db,
            data.path(),
            &[("goods", "1.0.0"), ("goods-acme", "1.0.0")],
        );
        let host = TestHost::start(config).await.expect("host starts");
        let log = CapturedLog::default();
        let _log = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_writer(log.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish(),
        );
        for mount in ["goods", "goods-acme"] {
            let (status, _, body) = call_as(
                &host,
                None,
                json_post(
                    &format!("/p/{mount}/api/items"),
                    &json!({"sku": "D-1", "name": "Doomed"}),
                ),
            )
            .await;
            assert_eq!(status, 401, "{kind}: {body}");
        }
        let super_admin = host.client.clone();
        for mount in ["goods", "goods-acme"] {
            let created = super_admin
                .post(host.url(&format!("/p/{mount}/api/items")))
                .json(&json!({"sku": "D-1", "name": "Doomed"}))
                .send()
                .await
                .expect("answered");
            assert_eq!(created.status(), 201, "{kind}: {mount}");
        }

        // The clerk passes the route check (read) but not the handler's.
        let clerk = caller_with_roles(&host, "clerk", &["clerk"]).await;
        let (status, _, body) = call_as(&host, Some(clerk), delete("/p/goods/api/items/1")).await;
        assert_eq!(status, 403, "{kind}: {body}");
        assert!(
            body.to_string().contains("B_GOODS_ITEM_DELETE"),
            "{kind}: {body}"
        );
        assert!(!log.text().contains("deleted item"), "{kind}");

        // A caller holding goods' button but not ACME's is refused by the
        // fork: the fork's code asks for B_GOODS_ITEM_DELETE and the host
        // reads it as B_GOODS_ACME_ITEM_DELETE.
        let goods_only = Arc::new(Caller {
            permissions: Arc::new(PermissionSet::from_codes(
                [
                    "goods.items.read",
                    "goods-acme.items.read",
                    "B_GOODS_ITEM_DELETE",
                ]
                .map(String::from),
            )),
            ..(*caller_with_roles(&host, "deleter", &[]).await).clone()
        });
        let (status, _, body) = call_as(
            &host,
            Some(goods_only.clone()),
            delete("/p/goods-acme/api/items/1"),
        )
        .await;
        assert_eq!(status, 403, "{kind}: {body}");
        let (status, _, body) =
            call_as(&host, Some(goods_only), delete("/p/goods/api/items/1")).await;
        assert_eq!(status, 204, "{kind}: {body}");
        assert!(
            log.text().contains("deleted item 1 (by deleter)"),
            "{kind}: the handler saw who called: {}",
            log.text()
        );

        // The admin role got ACME's button from the fork's own manifest.
        let admin = caller_with_roles(&host, "boss", &["admin"]).await;
        assert!(admin.has("B_GOODS_ACME_ITEM_DELETE"), "{kind}");
        let (status, _, body) =
            call_as(&host, Some(admin), delete("/p/goods-acme/api/items/1")).await;
        assert_eq!(status, 204, "{kind}: {body}");
        drop(_log);
        host.stop().await;
    }
}

/// The shell's menu and plugin lists come from the host already cut to the
/// caller: anonymous callers get 401, a menu whose code the caller lacks is
/// not even named, and the plugin list needs `plugins.view`.
#[tokio::test]
async fn menus_and_the_plugin_list_answer_only_what_the_caller_may_see() {
    let db = crate::support::TestDb::create(crate::support::DbKind::Sqlite)
        .await
        .expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let config = test_config(&db, data.path(), &[("goods", "1.0.0"), ("hello", "0.1.0")]);
    let host = TestHost::start(config).await.expect("host starts");
    for path in ["/api/menus", "/api/plugins"] {
        let (status, _, body) = call_as(&host, None, get(path)).await;
        assert_eq!(status, 401, "{path} for an anonymous caller: {body}");
    }

    let menu_ids = |body: &Value| -> Vec<String> {
        body.as_array()
            .expect("a list")
            .iter()
            .map(|m| {
                format!(
                    "{}/{}",
                    m["plugin"].as_str().unwrap_or(""),
                    m["id"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    let clerk = caller_with_roles(&host, "clerk", &["clerk"]).await;
    let (status, _, menus) = call_as(&host, Some(clerk.clone()), get("/api/menus")).await;
    assert_eq!(status, 200, "{menus}");
    assert!(
        menu_ids(&menus).contains(&"goods/goods".to_owned()),
        "goods.items.read opens goods' menu: {menus}"
    );
    let nobody = caller_with_roles(&host, "newcomer", &[]).await;
    let (status, _, menus) = call_as(&host, Some(nobody.clone()), get("/api/menus")).await;
    assert_eq!(status, 200, "{menus}");
    assert!(
        !menu_ids(&menus).contains(&"goods/goods".to_owned()),
        "without goods.items.read the goods menu is not named: {menus}"
    );

    let (status, _, body) = call_as(&host, Some(clerk), get("/api/plugins")).await;
    assert_eq!(status, 403, "the clerk may not list plugins: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("plugins.view"),
        "{body}"
    );
    let response = host.get("/api/plugins").await;
    assert_eq!(response.status(), 200, "the administrator lists them");
    host.stop().await;
}
