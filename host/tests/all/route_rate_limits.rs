//! Per-route rate limits from plugin manifests: goods limits its write API
//! to 10 requests a minute per user. The 11th write of one user gets 429
//! with `Retry-After` before the plugin runs; another user, and the same
//! user's reads, are unaffected.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use plinth_host::caller::{Caller, CallerKind, PermissionSet};
use plinth_host::http::{AppState, app};
use tower::Service;

use crate::support::{TestHost, all_dbs, test_config};

fn user(id: i64) -> Arc<Caller> {
    Arc::new(Caller {
        kind: CallerKind::User,
        id,
        login: format!("user{id}"),
        display_name: format!("User {id}"),
        roles: vec!["admin".into()],
        data_scope: "all".into(),
        permissions: Arc::new(PermissionSet::super_admin()),
    })
}

/// Drives the router in-process as `caller` (the extension the sign-in
/// middleware would set): status and `Retry-After`.
async fn call(
    router: &axum::Router,
    caller: &Arc<Caller>,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Option<u64>, String) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request");
    request.extensions_mut().insert(caller.clone());
    // A Router is always ready, so `call` needs no `poll_ready` first.
    let response = router.clone().call(request).await.expect("answered");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        retry_after,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn the_eleventh_write_in_a_minute_gets_429_and_other_users_are_unaffected() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let config = test_config(&db, data.path(), &[("goods", "1.0.0")]);
        let host = TestHost::start(config).await.expect("host starts");
        let router = app(AppState::ready(host.host.clone(), host.agent.clone()));
        let (alice, bob) = (user(1), user(2));

        for i in 0..10 {
            let body = format!(r#"{{"sku": "A-{i}", "name": "item {i}"}}"#);
            let (status, _, text) =
                call(&router, &alice, "POST", "/p/goods/api/items", &body).await;
            assert_eq!(status, 201, "{kind}: write {i}: {text}");
        }
        let (status, retry_after, text) = call(
            &router,
            &alice,
            "POST",
            "/p/goods/api/items",
            r#"{"sku": "A-10", "name": "one too many"}"#,
        )
        .await;
        assert_eq!(status, 429, "{kind}: {text}");
        let retry_after = retry_after.expect("Retry-After");
        assert!(
            (1..=60).contains(&retry_after),
            "{kind}: Retry-After {retry_after}"
        );
        assert!(
            text.contains("10/min") && text.contains("rate_limited"),
            "{kind}: {text}"
        );

        // The refused write never reached the plugin.
        let (status, _, listed) =
            call(&router, &alice, "GET", "/p/goods/api/items?q=A-10", "").await;
        assert_eq!(status, 200, "{kind}: reads are not limited");
        assert!(!listed.contains("one too many"), "{kind}: {listed}");

        let (status, _, text) = call(
            &router,
            &bob,
            "POST",
            "/p/goods/api/items",
            r#"{"sku": "B-1", "name": "bob's"}"#,
        )
        .await;
        assert_eq!(status, 201, "{kind}: another user is unaffected: {text}");
        host.stop().await;
    }
}
