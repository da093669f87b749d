//! A standard `wasi:http/incoming-handler` component, built without
//! plinth-sdk, serves as a plugin route.

use crate::support::{DbKind, TestDb, TestHost, test_config};

#[tokio::test]
async fn a_standard_wasi_http_component_serves_through_the_host() {
    let db = TestDb::create(DbKind::Sqlite).await.expect("sqlite");
    let data = tempfile::tempdir().expect("temp dir");
    let config = test_config(&db, data.path(), &[("http-hello", "0.1.0")]);
    let host = TestHost::start(config).await.expect("host starts");

    for path in ["/p/http-hello/", "/p/http-hello/any/path?x=1"] {
        let response = host.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers().contains_key("x-request-id"));
        assert_eq!(response.text().await.expect("body"), "Hello from plinth");
    }
    host.stop().await;
}
