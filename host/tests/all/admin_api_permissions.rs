//! The admin API is gated by named host permissions: 401 without a caller,
//! 403 with one lacking the route's code; users, roles, grants and service
//! tokens are managed through it; disabling a user or revoking a token
//! refuses them at once. Browsers asking for pages are sent to sign in,
//! with a return path that stays on this host.

use reqwest::Method;

use crate::support::{TestHost, all_dbs, test_config};

#[tokio::test]
async fn each_admin_route_needs_its_permission() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[("hello", "0.1.0")]))
            .await
            .expect("start");
        let kind = db.kind;
        let admin = host.admin();
        let (status, body) = admin
            .post_json(
                "/roles",
                serde_json::json!({"name": "viewer", "title": "Viewer", "data_scope": "all"}),
            )
            .await;
        assert_eq!(status, 201, "{kind}: {body}");
        let (status, body) = admin.put("/roles/viewer/grants/plugins.view").await;
        assert_eq!(status, 200, "{kind}: {body}");
        let (status, _) = admin.put("/roles/viewer/grants/no.such.code").await;
        assert_eq!(status, 400, "{kind}: an unknown host code is refused");
        let viewer = host
            .user_with_roles("vera", "vera-password-1", &["viewer"])
            .await;

        let get = |path: &str| host.with_cookie(Method::GET, path, &viewer).send();
        assert_eq!(
            get("/api/admin/plugins").await.expect("answer").status(),
            200,
            "{kind}"
        );
        assert_eq!(
            get("/api/admin/journal").await.expect("answer").status(),
            200,
            "{kind}"
        );
        for path in [
            "/api/admin/users",
            "/api/admin/audit",
            "/api/admin/agent",
            "/api/admin/tokens",
        ] {
            let answer = get(path).await.expect("answer");
            assert_eq!(
                answer.status(),
                403,
                "{kind}: {path} needs a code vera lacks"
            );
        }
        let answer = host
            .with_cookie(Method::POST, "/api/admin/plugins/hello/disable", &viewer)
            .send()
            .await
            .expect("answer");
        assert_eq!(
            answer.status(),
            403,
            "{kind}: plugins.enable is not granted"
        );
        assert_eq!(
            host.get("/p/hello/").await.status(),
            200,
            "{kind}: the plugin still serves"
        );
        let anonymous = host
            .anonymous
            .post(host.url("/api/admin/plugins/hello/disable"))
            .send()
            .await
            .expect("answer");
        assert_eq!(anonymous.status(), 401, "{kind}");

        // /me lists the granted codes.
        let me: serde_json::Value = get("/api/auth/me")
            .await
            .expect("me")
            .json()
            .await
            .expect("json");
        assert_eq!(
            me["permissions"],
            serde_json::json!(["plugins.view"]),
            "{kind}: {me}"
        );
        assert_eq!(me["super_admin"], false);

        // Revoking the grant takes effect on the next request.
        let (status, _) = admin.delete("/roles/viewer/grants/plugins.view").await;
        assert_eq!(status, 200, "{kind}");
        assert_eq!(
            get("/api/admin/plugins").await.expect("answer").status(),
            403,
            "{kind}"
        );

        // Disabling the user refuses their session at once.
        let (status, body) = admin
            .patch_json("/users/vera", serde_json::json!({"disabled": true}))
            .await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(
            get("/api/auth/me").await.expect("answer").status(),
            401,
            "{kind}"
        );
        assert_eq!(
            host.sign_in("vera", "vera-password-1").await.0,
            401,
            "{kind}"
        );
        let (status, _) = admin.delete("/users/vera").await;
        assert_eq!(status, 204);
        let (status, _) = admin.get("/users/vera").await;
        assert_eq!(status, 404);
        let (status, _) = admin.delete("/roles/super-admin").await;
        assert_eq!(status, 409, "{kind}: the built-in role stays");
        host.stop().await;
    }
}

#[tokio::test]
async fn a_service_token_holds_its_own_grants_until_revoked() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[]))
            .await
            .expect("start");
        let kind = db.kind;
        let (status, body) = host
            .admin()
            .post_json(
                "/tokens",
                serde_json::json!({"name": "ci", "permissions": ["plugins.view"]}),
            )
            .await;
        assert_eq!(status, 201, "{kind}: {body}");
        let token = body["token"].as_str().expect("shown once").to_owned();
        let (_, listed) = host.admin().get("/tokens").await;
        assert!(
            listed[0].get("token").is_none(),
            "{kind}: a listing never shows the token: {listed}"
        );
        assert!(!listed.to_string().contains(&token));

        let call = |method: Method, path: &str| {
            host.anonymous
                .request(method, host.url(path))
                .bearer_auth(&token)
                .send()
        };
        assert_eq!(
            call(Method::GET, "/api/admin/plugins")
                .await
                .expect("answer")
                .status(),
            200,
            "{kind}"
        );
        assert_eq!(
            call(Method::GET, "/api/admin/users")
                .await
                .expect("answer")
                .status(),
            403,
            "{kind}"
        );
        let (status, _) = host.admin().delete("/tokens/ci").await;
        assert_eq!(status, 204);
        assert_eq!(
            call(Method::GET, "/api/admin/plugins")
                .await
                .expect("answer")
                .status(),
            401,
            "{kind}: revoked"
        );

        // Its use was audited.
        let (status, audit) = host.admin().get("/audit?user=ci").await;
        assert_eq!(status, 200, "{kind}: {audit}");
        assert!(
            audit["entries"]
                .as_array()
                .expect("entries")
                .iter()
                .any(|e| e["action"] == "plugins.view" && e["actor_kind"] == "token"),
            "{kind}: {audit}"
        );
        host.stop().await;
    }
}

#[tokio::test]
async fn pages_redirect_to_sign_in_without_an_open_redirect() {
    let db = crate::support::TestDb::create(crate::support::DbKind::Sqlite)
        .await
        .expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = TestHost::start(test_config(&db, data.path(), &[]))
        .await
        .expect("start");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = |path: &str| {
        client
            .get(host.url(path))
            .header("accept", "text/html")
            .send()
    };
    let answer = page("/").await.expect("answer");
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/login.html?next=/");
    let answer = page("/admin/index.html?tab=plugins").await.expect("answer");
    assert_eq!(
        answer.headers()["location"],
        "/login.html?next=/admin/index.html%3Ftab%3Dplugins"
    );
    // An API call gets 401 JSON, not a redirect.
    let answer = client
        .get(host.url("/api/auth/me"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 401);
    // A signed-in browser gets the page.
    let cookie = host.sign_in_admin().await;
    let answer = client
        .get(host.url("/"))
        .header("accept", "text/html")
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answer");
    assert_ne!(answer.status(), 303);
    // The sign-in answer never hands back a `next` that leaves the host.
    for evil in ["//evil.example", "https://evil.example/", "/\\evil.example"] {
        let body: serde_json::Value = host
            .anonymous
            .post(host.url("/api/auth/login"))
            .json(&serde_json::json!({"login": "admin", "password": "dev-admin-password", "next": evil}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        assert_eq!(body["next"], "/", "{evil}");
    }
    host.stop().await;
}

/// A delegated administrator (users, roles and tokens, no super-admin)
/// hands out and acts on only what they hold: not the super-admin role,
/// not a code they lack, not a new password for someone above them. What
/// is within their reach goes through, and a super-admin can do it all.
#[tokio::test]
async fn a_delegated_administrator_cannot_raise_anyone_above_themselves() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[]))
            .await
            .expect("start");
        let kind = db.kind;
        let admin = host.admin();
        let (status, body) = admin
            .post_json(
                "/roles",
                serde_json::json!({"name": "helpdesk", "title": "Help desk"}),
            )
            .await;
        assert_eq!(status, 201, "{kind}: {body}");
        for code in [
            "users.manage",
            "roles.manage",
            "tokens.manage",
            "audit.view",
        ] {
            let (status, body) = admin.put(&format!("/roles/helpdesk/grants/{code}")).await;
            assert_eq!(status, 200, "{kind}: {body}");
        }
        let helen = host
            .user_with_roles("helen", "Helen-password-1", &["helpdesk"])
            .await;
        let as_helen = |method: Method, path: &str, body: Option<serde_json::Value>| {
            let mut request = host.with_cookie(method, &format!("/api/admin{path}"), &helen);
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move {
                let response = request.send().await.expect("answer");
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                (status, body)
            }
        };
        let refused = |what: &str, (status, body): (u16, serde_json::Value)| {
            assert_eq!(status, 403, "{kind}: {what}: {body}");
            assert_eq!(
                body["error"]["code"], "beyond_your_permissions",
                "{kind}: {what}: {body}"
            );
        };

        refused(
            "the super-admin role for herself",
            as_helen(Method::PUT, "/users/helen/roles/super-admin", None).await,
        );
        refused(
            "a code she lacks for her own role",
            as_helen(Method::PUT, "/roles/helpdesk/grants/plugins.install", None).await,
        );
        refused(
            "a token holding a code she lacks",
            as_helen(
                Method::POST,
                "/tokens",
                Some(serde_json::json!({"name": "deploy", "permissions": ["plugins.install"]})),
            )
            .await,
        );
        refused(
            "a new user with the super-admin role",
            as_helen(
                Method::POST,
                "/users",
                Some(serde_json::json!({"login": "mallory", "password": "Mallory-password-1", "roles": ["super-admin"]})),
            )
            .await,
        );
        refused(
            "a new password for the super-admin",
            as_helen(
                Method::PATCH,
                "/users/admin",
                Some(serde_json::json!({"password": "Taken-over-password-1"})),
            )
            .await,
        );
        refused(
            "deleting the super-admin",
            as_helen(Method::DELETE, "/users/admin", None).await,
        );
        host.sign_in_admin().await;

        // Within her reach: a token of a code she holds, a user with her
        // own role, and changing that user.
        let (status, body) = as_helen(
            Method::POST,
            "/tokens",
            Some(serde_json::json!({"name": "auditor", "permissions": ["audit.view"]})),
        )
        .await;
        assert_eq!(status, 201, "{kind}: {body}");
        let (status, body) = as_helen(
            Method::POST,
            "/users",
            Some(serde_json::json!({"login": "sam", "password": "Sam-password-12", "roles": ["helpdesk"]})),
        )
        .await;
        assert_eq!(status, 201, "{kind}: {body}");
        let (status, body) = as_helen(
            Method::PATCH,
            "/users/sam",
            Some(serde_json::json!({"display_name": "Sam Desk"})),
        )
        .await;
        assert_eq!(status, 200, "{kind}: {body}");
        let (_, user) = admin.get("/users/helen").await;
        assert_eq!(user["roles"], serde_json::json!(["helpdesk"]), "{kind}");

        // The super-admin may.
        let (status, body) = admin.put("/users/helen/roles/super-admin").await;
        assert_eq!(status, 200, "{kind}: {body}");
        host.stop().await;
    }
}
