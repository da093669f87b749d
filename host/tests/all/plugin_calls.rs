//! Calls between plugins through the WIT `plugins` interface: allowed only
//! to a plugin the caller's manifest `depends` on, answered in-process by
//! the callee (which learns who called), and an A -> B -> A loop is cut with
//! an error naming the chain.

use serde_json::{Value, json};

use crate::support::{DbKind, TestDb, TestHost, built_plugins, derived_package, test_config};

/// The probe plugin's manifest as `name` `version` with `depends`
/// (`table_prefix` kept apart so two probes can be installed side by side).
fn probe_as(name: &str, version: &str, table_prefix: &str, depends: &[(&str, &str)]) -> Vec<u8> {
    let manifest = std::fs::read_to_string(built_plugins().join("probe-0.1.0/plugin.toml"))
        .expect("probe manifest");
    let mut manifest = manifest
        .replace("name = \"probe\"", &format!("name = \"{name}\""))
        .replace(
            "table_prefix = \"probe_\"",
            &format!("table_prefix = \"{table_prefix}\""),
        )
        .replace("version = \"0.1.0\"", &format!("version = \"{version}\""))
        // Permission codes live under the plugin's own name.
        .replace("\"probe.use\"", &format!("\"{name}.use\""));
    manifest.push_str("\n[depends]\n");
    for (dep, range) in depends {
        manifest.push_str(&format!("{dep} = \"{range}\"\n"));
    }
    derived_package("probe-0.1.0", version, &[("plugin.toml", &manifest)])
}

async fn call(host: &TestHost, from: &str, to: &str, path: &str) -> (u16, String) {
    let response = host
        .client
        .get(host.url(&format!("/p/{from}/call")))
        .query(&[("plugin", to), ("path", path)])
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_plugin_calls_only_what_it_depends_on_and_loops_are_cut() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let host = TestHost::start(test_config(
        &db,
        data.path(),
        &[("goods", "1.0.0"), ("probe", "0.1.0")],
    ))
    .await
    .expect("host starts");
    let admin = host.admin();
    let created = host
        .client
        .post(host.url("/p/goods/api/items"))
        .json(&json!({"sku": "CALL-1", "name": "reached through probe", "stock": 2}))
        .send()
        .await
        .expect("answered");
    assert_eq!(created.status(), 201);

    // Without `depends`, the call is refused and names the fix.
    let (status, body) = call(&host, "probe", "goods", "/api/items").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("may not call plugin goods: add goods to [depends]"),
        "{body}"
    );

    // Depending on goods, probe reads goods' items through goods' own code.
    let (status, body) = admin
        .install(
            probe_as("probe", "0.1.1", "probe_", &[("goods", "^1")]),
            "upgrade",
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(&host, "probe", "goods", "/api/items?q=call").await;
    assert_eq!(status, 200, "{body}");
    let items: Value = serde_json::from_str(&body).expect("goods' JSON");
    assert_eq!(items[0]["sku"], "CALL-1", "{items}");
    // A plugin that is not installed is refused, even when depended on.
    let (status, body) = call(&host, "probe", "hello", "/").await;
    assert_eq!(status, 502, "{body}");

    // probe-two depends on probe, then probe on probe-two: a cycle.
    let (status, body) = admin
        .install(
            probe_as("probe-two", "0.1.0", "ptwo_", &[("probe", "^0.1")]),
            "install",
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(&host, "probe-two", "probe", "/calling-plugin").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "probe-two"),
        "the callee learns its caller"
    );
    let (status, body) = admin
        .install(
            probe_as(
                "probe",
                "0.1.2",
                "probe_",
                &[("goods", "^1"), ("probe-two", "^0.1")],
            ),
            "upgrade",
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(&host, "probe", "probe-two", "/call?plugin=probe&path=/ok").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("call chain probe -> probe-two -> probe cut"),
        "{body}"
    );
    // The chain is cut before probe runs again; a plain call still works.
    let (status, body) = call(&host, "probe", "probe-two", "/ok").await;
    assert_eq!((status, body.as_str()), (200, "ok"));

    // The callee's own routes judge the original user: someone who may use
    // probe-two but not probe is refused probe's route through the call,
    // with the answer probe's route gives over HTTP; granted, it passes.
    let (status, body) = admin.post_json("/roles", json!({"name": "callers"})).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = admin.put("/roles/callers/grants/probe-two.use").await;
    assert!((200..300).contains(&status), "{body}");
    let cookie = host
        .user_with_roles("carol", "carol-calls-probe", &["callers"])
        .await;
    let through_probe_two = |cookie: String| {
        let request = host
            .with_cookie(reqwest::Method::GET, "/p/probe-two/call", &cookie)
            .query(&[("plugin", "probe"), ("path", "/ok")]);
        async move {
            let answer = request.send().await.expect("answered");
            let status = answer.status().as_u16();
            (status, answer.text().await.unwrap_or_default())
        }
    };
    let (status, body) = through_probe_two(cookie.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("probe.use"),
        "names the code probe needs: {body}"
    );
    let (status, body) = admin.put("/roles/callers/grants/probe.use").await;
    assert!((200..300).contains(&status), "{body}");
    let (status, body) = through_probe_two(cookie).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    host.stop().await;
}
