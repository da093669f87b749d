//! Signing in: the seeded administrator signs in with the configured
//! password and gets an HttpOnly session cookie; `/api/auth/me` names them;
//! sign-out, a password change and tampered, forged or expired cookies all
//! leave a request without a caller (401 on the admin API).

use reqwest::Method;

use crate::support::{TestHost, all_dbs, test_config};

#[tokio::test]
async fn the_seeded_admin_signs_in_and_out() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[]))
            .await
            .expect("start");
        let kind = db.kind;

        // The cookie is HttpOnly, SameSite=Lax, and not Secure in dev mode.
        let response = host
            .anonymous
            .post(host.url("/api/auth/login"))
            .json(&serde_json::json!({"login": "admin", "password": "dev-admin-password", "next": "//evil.example"}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), 200, "{kind}");
        let set_cookie = response.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(
            set_cookie.starts_with("plinth_session="),
            "{kind}: {set_cookie}"
        );
        assert!(
            set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
            "{set_cookie}"
        );
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["login"], "admin", "{kind}: {body}");
        assert_eq!(body["super_admin"], true, "{kind}: {body}");
        assert_eq!(
            body["next"], "/",
            "{kind}: an open redirect must not be answered back"
        );
        let cookie = set_cookie.split(';').next().expect("pair").to_owned();

        let me = host
            .with_cookie(Method::GET, "/api/auth/me", &cookie)
            .send()
            .await
            .expect("me");
        assert_eq!(me.status(), 200, "{kind}");
        let me: serde_json::Value = me.json().await.expect("json");
        assert_eq!(me["login"], "admin");
        assert!(
            me["permissions"]
                .as_array()
                .expect("codes")
                .iter()
                .any(|c| c == "plugins.install"),
            "{me}"
        );
        let plugins = host
            .with_cookie(Method::GET, "/api/admin/plugins", &cookie)
            .send()
            .await
            .expect("plugins");
        assert_eq!(
            plugins.status(),
            200,
            "{kind}: the super-admin's session opens the admin API"
        );

        // Tampered (one hex digit changed), forged (random) and absent.
        let mut tampered = cookie.clone();
        let last = tampered.pop().expect("char");
        tampered.push(if last == '0' { '1' } else { '0' });
        let forged = format!("plinth_session={}", "ab".repeat(32));
        for (what, bad) in [
            ("tampered", tampered.as_str()),
            ("forged", forged.as_str()),
            ("garbage", "plinth_session=../../x"),
        ] {
            let answer = host
                .with_cookie(Method::GET, "/api/admin/plugins", bad)
                .send()
                .await
                .expect("answer");
            assert_eq!(answer.status(), 401, "{kind}: a {what} session is refused");
            let answer = host
                .with_cookie(Method::GET, "/api/auth/me", bad)
                .send()
                .await
                .expect("answer");
            assert_eq!(answer.status(), 401, "{kind}: a {what} session is refused");
        }
        assert_eq!(
            host.anonymous
                .get(host.url("/api/admin/plugins"))
                .send()
                .await
                .expect("answer")
                .status(),
            401,
            "{kind}: anonymous"
        );

        // Signing out ends the session at once (the cache included).
        let out = host
            .with_cookie(Method::POST, "/api/auth/logout", &cookie)
            .send()
            .await
            .expect("logout");
        assert_eq!(out.status(), 204);
        let after = host
            .with_cookie(Method::GET, "/api/auth/me", &cookie)
            .send()
            .await
            .expect("me");
        assert_eq!(
            after.status(),
            401,
            "{kind}: a signed-out session is refused"
        );

        // Seeding is idempotent: a restart neither fails nor resets the admin.
        host.stop().await;
        let host = TestHost::start(test_config(&db, data.path(), &[]))
            .await
            .expect("restart");
        assert_eq!(
            host.sign_in("admin", "dev-admin-password").await.0,
            200,
            "{kind}"
        );
        host.stop().await;
    }
}

#[tokio::test]
async fn a_password_change_refuses_every_older_session() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[]))
            .await
            .expect("start");
        let kind = db.kind;
        let first = host.sign_in_admin().await;
        let second = host.sign_in_admin().await;
        // Warm the cache for the old session, so the refusal is not just a miss.
        let warm = host
            .with_cookie(Method::GET, "/api/auth/me", &first)
            .send()
            .await
            .expect("me");
        assert_eq!(warm.status(), 200);

        let changed = host
            .with_cookie(Method::POST, "/api/auth/password", &second)
            .json(&serde_json::json!({"current_password": "dev-admin-password", "new_password": "a-much-better-password"}))
            .send()
            .await
            .expect("change");
        assert_eq!(changed.status(), 200, "{kind}");
        let new_cookie = changed.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("pair")
            .to_owned();

        for old in [&first, &second] {
            let answer = host
                .with_cookie(Method::GET, "/api/admin/plugins", old)
                .send()
                .await
                .expect("answer");
            assert_eq!(
                answer.status(),
                401,
                "{kind}: a session from before the password change is refused"
            );
        }
        let answer = host
            .with_cookie(Method::GET, "/api/admin/plugins", &new_cookie)
            .send()
            .await
            .expect("answer");
        assert_eq!(
            answer.status(),
            200,
            "{kind}: the session the change opened works"
        );
        assert_eq!(
            host.sign_in("admin", "dev-admin-password").await.0,
            401,
            "{kind}"
        );
        assert_eq!(
            host.sign_in("admin", "a-much-better-password").await.0,
            200,
            "{kind}"
        );
        host.stop().await;
    }
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[]))
            .await
            .expect("start");
        let cookie = host.sign_in_admin().await;
        let sql = plinth_host::db::host_sql(
            host.host.db.dialect(),
            "UPDATE plinth_sessions SET expires_at = ?",
        );
        sqlx::query(&sql)
            .bind(1_i64)
            .execute(host.host.db.pool())
            .await
            .expect("expire");
        // The cache holds no entry for it yet, and a cached one checks the
        // expiry on every hit.
        let answer = host
            .with_cookie(Method::GET, "/api/admin/plugins", &cookie)
            .send()
            .await
            .expect("answer");
        assert_eq!(
            answer.status(),
            401,
            "{}: an expired session is refused",
            db.kind
        );
        host.stop().await;
    }
}

#[tokio::test]
async fn a_cross_site_state_change_is_refused() {
    let db = crate::support::TestDb::create(crate::support::DbKind::Sqlite)
        .await
        .expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = TestHost::start(test_config(&db, data.path(), &[]))
        .await
        .expect("start");
    let cookie = host.sign_in_admin().await;
    for (header, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ] {
        let answer = host
            .with_cookie(Method::POST, "/api/auth/logout", &cookie)
            .header(header, value)
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 403, "{header}: {value}");
        let body: serde_json::Value = answer.json().await.expect("json");
        assert_eq!(body["error"]["code"], "cross_site");
    }
    // The session survived the refused sign-out; a same-origin one works.
    let me = host
        .with_cookie(Method::GET, "/api/auth/me", &cookie)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), 200);
    let out = host
        .with_cookie(Method::POST, "/api/auth/logout", &cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 204);
    host.stop().await;
}

/// Needs the permission check before a plugin runs (perms' part of issue
/// 10); without it hello's `/greeting` (behind `hello.greet`) is open and
/// the first assertion fails.
#[tokio::test]
async fn a_plugin_route_refuses_anonymous_and_signed_out_callers() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[("hello", "0.1.0")]))
            .await
            .expect("start");
        let kind = db.kind;
        assert_eq!(
            host.anonymous
                .get(host.url("/p/hello/greeting"))
                .send()
                .await
                .expect("answer")
                .status(),
            401,
            "{kind}: anonymous"
        );
        let cookie = host.sign_in_admin().await;
        let served = host
            .with_cookie(Method::GET, "/p/hello/greeting", &cookie)
            .send()
            .await
            .expect("answer");
        assert_eq!(
            served.status(),
            200,
            "{kind}: the super-admin is let through"
        );
        let out = host
            .with_cookie(Method::POST, "/api/auth/logout", &cookie)
            .send()
            .await
            .expect("logout");
        assert_eq!(out.status(), 204);
        let refused = host
            .with_cookie(Method::GET, "/p/hello/greeting", &cookie)
            .send()
            .await
            .expect("answer");
        assert_eq!(refused.status(), 401, "{kind}: a signed-out session");
        host.stop().await;
    }
}
