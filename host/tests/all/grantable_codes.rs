//! `GET /api/admin/permissions` lists every code a role can be granted
//! from the host's own list and the serving plugins' manifests (menus,
//! the buttons on them, API permissions with their routes), and every code
//! it lists is one a grant accepts; it needs `roles.manage`. The users
//! listing says when each user last signed in.

use reqwest::Method;
use serde_json::Value;

use crate::support::{TestHost, all_dbs, test_config};

#[tokio::test]
async fn the_permission_list_is_what_a_grant_accepts() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = TestHost::start(test_config(&db, data.path(), &[("goods", "1.0.0")]))
            .await
            .expect("start");
        let kind = db.kind;
        let admin = host.admin();
        let (status, codes) = admin.get("/permissions").await;
        assert_eq!(status, 200, "{kind}: {codes}");
        assert_eq!(codes["super_admin_role"], "super-admin", "{kind}");

        let host_codes: Vec<&str> = codes["host"]
            .as_array()
            .expect("host codes")
            .iter()
            .map(|c| c["code"].as_str().expect("code"))
            .collect();
        let expected: Vec<&str> = plinth_host::accounts::HOST_PERMISSIONS
            .iter()
            .map(|(c, _)| *c)
            .collect();
        assert_eq!(host_codes, expected, "{kind}: the host's own list");

        let plugins = codes["plugins"].as_array().expect("plugins");
        let goods = plugins
            .iter()
            .find(|p| p["plugin"] == "goods")
            .unwrap_or_else(|| panic!("{kind}: goods is listed: {codes}"));
        assert_eq!(goods["version"], "1.0.0");
        assert_eq!(goods["menus"][0]["id"], "goods");
        assert_eq!(goods["menus"][0]["permission"], "goods.items.read");
        assert_eq!(goods["buttons"][0]["code"], "B_GOODS_ITEM_DELETE");
        assert_eq!(
            goods["buttons"][0]["menu"], "goods",
            "the button sits on its menu"
        );
        let read = goods["permissions"]
            .as_array()
            .expect("permissions")
            .iter()
            .find(|p| p["code"] == "goods.items.read")
            .expect("goods.items.read");
        assert_eq!(read["title"], "See goods");
        let routes: Vec<&str> = read["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .map(|r| r.as_str().expect("route"))
            .collect();
        assert!(
            routes.contains(&"GET /api/items") && routes.contains(&"DELETE /api/items/{id}"),
            "{kind}: the routes that need it: {routes:?}"
        );

        // Every listed code is grantable, and nothing else is.
        let (status, body) = admin
            .post_json("/roles", serde_json::json!({ "name": "everything" }))
            .await;
        assert_eq!(status, 201, "{kind}: {body}");
        let mut listed: Vec<String> = host_codes.iter().map(|c| (*c).to_owned()).collect();
        for plugin in plugins {
            for list in ["permissions", "buttons"] {
                for code in plugin[list].as_array().expect("codes") {
                    listed.push(code["code"].as_str().expect("code").to_owned());
                }
            }
        }
        for code in &listed {
            let (status, body) = admin.put(&format!("/roles/everything/grants/{code}")).await;
            assert_eq!(status, 200, "{kind}: {code} is grantable: {body}");
        }
        let (_, grants) = admin.get("/roles/everything/grants").await;
        assert_eq!(
            grants.as_array().expect("grants").len(),
            listed.len(),
            "{kind}"
        );
        let (status, _) = admin.put("/roles/everything/grants/goods.nothing").await;
        assert_eq!(status, 400, "{kind}: a code nobody declares is refused");

        // users.manage alone does not open the list (it is roles.manage's).
        let (status, body) = admin
            .post_json("/roles", serde_json::json!({ "name": "people" }))
            .await;
        assert_eq!(status, 201, "{kind}: {body}");
        let (status, body) = admin.put("/roles/people/grants/users.manage").await;
        assert_eq!(status, 200, "{kind}: {body}");
        let people = host
            .user_with_roles("paula", "paula-password-1", &["people"])
            .await;
        let answer = host
            .with_cookie(Method::GET, "/api/admin/permissions", &people)
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 403, "{kind}");
        let anonymous = host
            .anonymous
            .get(host.url("/api/admin/permissions"))
            .send()
            .await
            .expect("answer");
        assert_eq!(anonymous.status(), 401, "{kind}");

        // paula signed in just now; nobody else but the seeded admin exists,
        // and it has not signed in.
        let users: Value = host
            .with_cookie(Method::GET, "/api/admin/users", &people)
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("users");
        let last = |login: &str| {
            users
                .as_array()
                .expect("users")
                .iter()
                .find(|u| u["login"] == login)
                .unwrap_or_else(|| panic!("{kind}: {login} is listed: {users}"))["last_sign_in_at"]
                .as_i64()
                .expect("last_sign_in_at")
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        let paula = last("paula");
        assert!(
            paula > now - 60_000 && paula <= now + 1000,
            "{kind}: paula's sign-in is recent: {paula} vs {now}"
        );
        let admin_login = host.host.config.admin.login.clone();
        assert_eq!(last(&admin_login), 0, "{kind}: never signed in");
        let (_, one) = admin.get("/users/paula").await;
        assert_eq!(one["last_sign_in_at"].as_i64(), Some(paula), "{kind}");
        host.stop().await;
    }
}
