//! The WIT is a promise: a plugin built against host API 0.1.0 (the frozen
//! contract in `wit/frozen/0.1.0`, never rebuilt with the current SDK)
//! installs, serves and reaches its imports on a host whose current API is
//! newer, beside plugins built for the current version, to the holders of
//! the one code it is given since it declares no routes; and a manifest
//! whose `host_api` does not admit what its component was built for is
//! refused with the key named.

use crate::support::{
    Admin, DbKind, TestDb, TestHost, all_dbs, built_plugins, copy_dir, package, test_config,
};

async fn text(host: &TestHost, path: &str) -> (u16, String) {
    let response = host.get(path).await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_plugin_built_for_host_api_0_1_installs_and_serves_beside_current_ones() {
    for db in all_dbs().await {
        let kind = db.kind;
        let data = tempfile::tempdir().expect("temp dir");
        let config = test_config(&db, data.path(), &[("hello", "0.1.0")]);
        let host = TestHost::start(config).await.expect("host starts");

        let (status, body) = host
            .admin()
            .install(package("legacy-hello-0.1.0"), "install")
            .await;
        assert_eq!(status, 201, "{kind}: {body}");

        let (status, greeting) = text(&host, "/p/legacy-hello/").await;
        assert_eq!(status, 200, "{kind}: {greeting}");
        assert_eq!(
            greeting, "Hello from legacy-hello 0.1.0, built for host API 0.1.0",
            "{kind}: plugin-info@0.1.0 answered"
        );
        let (status, stored) = text(&host, "/p/legacy-hello/kv").await;
        assert_eq!(
            (status, stored.as_str()),
            (200, "still here"),
            "{kind}: kv@0.1.0 round-trips"
        );
        // Built before `[[routes]]`, it is opened by one code, which the
        // admin role holds from the install on; anyone else is refused
        // until granted it.
        let staff = host
            .user_with_roles("olga", "Olga-password-1", &["admin"])
            .await;
        let response = host
            .with_cookie(reqwest::Method::GET, "/p/legacy-hello/", &staff)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 200, "{kind}: the admin role opens it");
        let newcomer = host.user_with_roles("nina", "Nina-password-1", &[]).await;
        let response = host
            .with_cookie(reqwest::Method::GET, "/p/legacy-hello/", &newcomer)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 403, "{kind}");
        let refusal = response.text().await.unwrap_or_default();
        assert!(refusal.contains("legacy-hello.use"), "{kind}: {refusal}");
        // The current-version plugin is served by the same host.
        let (status, hello) = text(&host, "/p/hello/").await;
        assert_eq!(
            (status, hello.as_str()),
            (200, "Hello from plinth"),
            "{kind}"
        );

        let (_, plugins) = host.admin().get("/plugins").await;
        let listed = plugins
            .as_array()
            .expect("plugin list")
            .iter()
            .any(|p| p["name"] == "legacy-hello" && p["version"] == "0.1.0");
        assert!(listed, "{kind}: legacy-hello is listed: {plugins}");
        host.stop().await;
    }
}

#[tokio::test]
async fn a_manifest_that_misstates_the_host_api_its_component_needs_is_refused() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = TestHost::start(test_config(&db, data.path(), &[]))
        .await
        .expect("host starts");
    // hello is built with the current SDK; this copy claims the old range.
    let bytes = hello_claiming("^0.1");
    let (status, body) = host.admin().install(bytes, "install").await;
    let message = Admin::message(&body);
    assert_eq!(status, 400, "{body}");
    assert!(
        message.contains("host_api = \"^0.1\"") && message.contains("built for host API 0.2.0"),
        "the refusal names the key and the version: {message}"
    );
    assert_eq!(
        text(&host, "/p/hello/").await.0,
        404,
        "nothing was installed"
    );
    host.stop().await;
}

/// The built hello package with its manifest's `host_api` replaced.
fn hello_claiming(range: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&built_plugins().join("hello-0.1.0"), dir.path());
    let path = dir.path().join("plugin.toml");
    let manifest = std::fs::read_to_string(&path).expect("manifest");
    let manifest: Vec<String> = manifest
        .lines()
        .map(|line| match line.starts_with("host_api = ") {
            true => format!("host_api = \"{range}\""),
            false => line.to_owned(),
        })
        .collect();
    std::fs::write(&path, manifest.join("\n")).expect("write manifest");
    plinth_package::pack_dir(dir.path()).expect("pack")
}
