//! Sign-in refusals look alike: an unknown login, a wrong password and a
//! locked account get the same answer. After `max_failures` wrong
//! passwords the account is locked even for the right one; one address is
//! limited to `per_ip_per_minute` attempts. An administrator can lift a
//! lock-out early.

use crate::support::{TestHost, all_dbs, test_config};

#[tokio::test]
async fn lock_out_and_per_ip_limit_answer_alike_for_unknown_users() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(&db, data.path(), &[]);
        config.admin.sign_in.max_failures = 3;
        // Few a minute, so the bucket refills slowly (one every 10 s) next to
        // the time the attempts take, each an Argon2 check.
        config.admin.sign_in.per_ip_per_minute = 6;
        let host = TestHost::start(config).await.expect("start");
        let kind = db.kind;
        let attempt = |login: &'static str, password: &'static str| {
            let host = &host;
            async move {
                let response = host
                    .anonymous
                    .post(host.url("/api/auth/login"))
                    .json(&serde_json::json!({"login": login, "password": password}))
                    .send()
                    .await
                    .expect("answer");
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.expect("json");
                (
                    status,
                    body["error"]["code"].clone(),
                    body["error"]["message"].clone(),
                )
            }
        };
        let unknown = attempt("nobody", "whatever-password").await;
        let wrong = attempt("admin", "wrong-password").await;
        assert_eq!(unknown.0, 401, "{kind}");
        assert_eq!(
            unknown, wrong,
            "{kind}: unknown login and wrong password answer alike"
        );
        attempt("admin", "wrong-password").await;
        attempt("admin", "wrong-password").await; // the third: locked now
        let locked = attempt("admin", "dev-admin-password").await;
        assert_eq!(
            locked, wrong,
            "{kind}: the right password on a locked account answers alike"
        );

        // Attempts so far: 5 of 6; the rest of the bucket, then 429, for
        // known and unknown logins alike.
        for _ in 0..1 {
            assert_eq!(
                attempt("nobody", "whatever-password").await.0,
                401,
                "{kind}"
            );
        }
        let limited_unknown = attempt("nobody", "whatever-password").await;
        let limited_known = attempt("admin", "dev-admin-password").await;
        assert_eq!(limited_unknown.0, 429, "{kind}");
        assert_eq!(limited_unknown, limited_known, "{kind}");

        let (_, audit) = host
            .admin()
            .get("/audit?action=auth.sign_in&user=admin")
            .await;
        let entries = audit["entries"].as_array().expect("entries");
        assert!(
            entries.iter().any(|e| e["detail"] == "account locked"),
            "{kind}: {audit}"
        );
        assert!(
            entries.iter().any(|e| e["detail"] == "wrong password"),
            "{kind}: {audit}"
        );
        host.stop().await;
    }
}

/// An administrator lifts a lock-out without waiting `lockout_secs` or
/// touching the password: the locked user's own password works at once,
/// the failure count starts afresh, and the audit log names who did it.
#[tokio::test]
async fn an_administrator_unlocks_a_locked_account_and_its_password_works_at_once() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(&db, data.path(), &[]);
        config.admin.sign_in.max_failures = 2;
        let host = TestHost::start(config).await.expect("start");
        let kind = db.kind;
        let sign_in = |password: &'static str| {
            let host = &host;
            async move {
                host.anonymous
                    .post(host.url("/api/auth/login"))
                    .json(&serde_json::json!({"login": "admin", "password": password}))
                    .send()
                    .await
                    .expect("answer")
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(sign_in("wrong-password").await, 401, "{kind}");
        assert_eq!(sign_in("wrong-password").await, 401, "{kind}");
        assert_eq!(sign_in("dev-admin-password").await, 401, "{kind}: locked");

        let admin = host.admin();
        let (_, user) = admin.get("/users/admin").await;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis();
        assert!(
            u128::from(user["locked_until"].as_u64().unwrap_or_default()) > now_ms,
            "{kind}: the lock-out shows: {user}"
        );
        let (status, user) = admin.post("/users/admin/unlock").await;
        assert_eq!(status, 200, "{kind}: {user}");
        assert_eq!(user["locked_until"], 0, "{kind}: {user}");
        let (status, _) = admin.post("/users/nobody/unlock").await;
        assert_eq!(status, 404, "{kind}: an unknown login is named as such");

        assert_eq!(sign_in("dev-admin-password").await, 200, "{kind}");
        // The count started afresh: one wrong password does not lock again.
        assert_eq!(sign_in("wrong-password").await, 401, "{kind}");
        assert_eq!(sign_in("dev-admin-password").await, 200, "{kind}");

        let (_, audit) = admin.get("/audit?action=users.manage").await;
        assert!(
            audit["entries"]
                .as_array()
                .expect("entries")
                .iter()
                .any(|e| {
                    e["target"] == "/api/admin/users/admin/unlock" && e["outcome"] == "ok"
                }),
            "{kind}: {audit}"
        );
        host.stop().await;
    }
}
