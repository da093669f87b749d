//! The audit log records who did what, when and from which address: a
//! plugin operation through the admin API by a signed-in user, a failed
//! sign-in; `GET /api/admin/audit` filters by user and action and pages
//! with `before`.

use reqwest::Method;

use crate::support::{TestHost, all_dbs, package, test_config};

#[tokio::test]
async fn plugin_operations_and_sign_ins_are_audited_and_paged() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[]))
            .await
            .expect("start");
        let kind = db.kind;
        assert_eq!(host.sign_in("admin", "not-the-password").await.0, 401);
        let cookie = host.sign_in_admin().await;
        let installed = host
            .with_cookie(Method::POST, "/api/admin/plugins", &cookie)
            .header("content-type", "application/zip")
            .body(package("hello-0.1.0"))
            .send()
            .await
            .expect("install");
        assert_eq!(installed.status(), 201, "{kind}");
        let disabled = host
            .with_cookie(Method::POST, "/api/admin/plugins/hello/disable", &cookie)
            .send()
            .await
            .expect("disable");
        assert_eq!(disabled.status(), 200, "{kind}");

        let (status, page) = host
            .admin()
            .get("/audit?user=admin&action=plugins.install")
            .await;
        assert_eq!(status, 200, "{kind}: {page}");
        let entry = &page["entries"][0];
        assert_eq!(entry["actor_kind"], "user", "{kind}: {page}");
        assert_eq!(entry["outcome"], "ok");
        assert_eq!(
            entry["ip"], "127.0.0.1",
            "{kind}: the client address is kept"
        );
        assert!(
            entry["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("POST /api/admin/plugins"),
            "{entry}"
        );

        let (_, failures) = host
            .admin()
            .get("/audit?action=auth.sign_in&user=admin")
            .await;
        let outcomes: Vec<&str> = failures["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["outcome"].as_str())
            .collect();
        assert!(
            outcomes.contains(&"refused") && outcomes.contains(&"ok"),
            "{kind}: {failures}"
        );

        // Paging: one at a time, newest first, no entry twice.
        let (_, first) = host.admin().get("/audit?user=admin&limit=1").await;
        let before = first["next_before"].as_i64().expect("a next page");
        let (_, second) = host
            .admin()
            .get(&format!("/audit?user=admin&limit=1&before={before}"))
            .await;
        let (a, b) = (
            first["entries"][0]["id"].as_i64(),
            second["entries"][0]["id"].as_i64(),
        );
        assert!(a > b, "{kind}: {first} then {second}");
        let (status, _) = host.admin().get("/audit?limit=0").await;
        assert_eq!(status, 400, "{kind}");
        host.stop().await;
    }
}
