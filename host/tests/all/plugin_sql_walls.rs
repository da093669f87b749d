//! The database is the second wall around a plugin's SQL, and plugin SQL is
//! bounded in time, share and size: through the real probe plugin, with the
//! parser guard switched off (a test-build-only switch) wherever the test is
//! about what the database itself does.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use plinth_host::db::plugin_roles::{DbRights, role_name};

use crate::support::{DbKind, TestDb, TestHost, all_dbs, test_config};

async fn start(db: &TestDb, dir: &std::path::Path, call_timeout_ms: u64) -> TestHost {
    let mut config = test_config(db, dir, &[("probe", "0.1.0"), ("goods", "1.0.0")]);
    config.runtime.call_timeout_ms = call_timeout_ms;
    TestHost::start(config).await.expect("host starts")
}

async fn count(host: &TestHost, table: &str) -> i64 {
    let row = sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(host.host.db.pool())
        .await
        .expect("count");
    sqlx::Row::try_get::<i64, _>(&row, 0).expect("count value")
}

async fn add_goods_item(host: &TestHost, sku: &str) {
    let response = host
        .client
        .post(host.url("/p/goods/api/items"))
        .json(&json!({ "sku": sku, "name": "Widget", "price_cents": 100, "stock": 3 }))
        .send()
        .await
        .expect("goods answered");
    assert_eq!(response.status().as_u16(), 201, "goods creates its item");
}

/// The host's own table write, as the host does it.
async fn host_write(host: &TestHost, value: &str) -> Result<(), String> {
    plinth_host::db::store::kv_set(&host.host.db, "walls-test", "k", value.as_bytes())
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn with_the_guard_off_the_database_refuses_other_tables() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = start(&db, data.path(), 2000).await;
        add_goods_item(&host, "A-1").await;
        host.host
            .db
            .plugin_sql()
            .switch_off_guard_for_tests("probe")
            .expect("dev mode allows the switch");

        let (status, body) = host
            .probe(
                "exec",
                "INSERT INTO probe_notes (id, body) VALUES (1, 'mine')",
            )
            .await;
        assert_eq!(status, 200, "{}: own table writable: {body}", db.kind);

        for (route, stmt) in [
            ("exec", "UPDATE goods_items SET stock = 0"),
            ("exec", "DELETE FROM goods_items"),
            (
                "exec",
                "INSERT INTO goods_items (sku, name, price_cents, stock, created_at) VALUES ('X', 'x', 1, 1, 0)",
            ),
            ("sql", "SELECT * FROM plinth_plugins"),
            ("sql", "SELECT k, v FROM plinth_plugin_kv"),
            ("exec", "UPDATE plinth_plugins SET state = 'disabled'"),
            ("exec", "DROP TABLE goods_items"),
        ] {
            let (status, body) = host.probe(route, stmt).await;
            assert_eq!(
                status, 403,
                "{}: the database must refuse {stmt}, got {body}",
                db.kind
            );
            let message = body["error"].as_str().unwrap_or_default();
            assert!(
                message.contains("database refused"),
                "{}: the refusal says the database refused it: {message}",
                db.kind
            );
        }
        // Nothing changed in the other plugin's table or the host's.
        assert_eq!(count(&host, "goods_items").await, 1, "{}", db.kind);
        let response = host.get("/p/goods/api/items").await;
        let items: Value = response.json().await.expect("items");
        assert_eq!(items[0]["stock"], 3, "{}: stock unchanged", db.kind);
        let installed = plinth_host::db::store::installed_plugins(&host.host.db)
            .await
            .expect("read plugins");
        assert!(installed.iter().all(|p| p.is_enabled()), "{}", db.kind);
        host_write(&host, "host still writes")
            .await
            .expect("host writes after the refusals");
        if db.kind == DbKind::Postgres {
            // Each plugin's tables belong to its own role, the host's to the host.
            let tag = match host.host.db.plugin_sql().rights() {
                DbRights::PostgresRoles { tag, .. } => tag.clone(),
                other => panic!("the test user can create roles, got {other:?}"),
            };
            let row = sqlx::query("SELECT current_user::text")
                .fetch_one(host.host.db.pool())
                .await
                .expect("current user");
            let host_user: String = sqlx::Row::try_get(&row, 0).expect("user");
            for (table, owner) in [
                ("goods_items", role_name(&tag, "goods")),
                ("probe_notes", role_name(&tag, "probe")),
                ("plinth_plugins", host_user),
            ] {
                let row =
                    sqlx::query("SELECT tableowner::text FROM pg_tables WHERE tablename = $1")
                        .bind(table)
                        .fetch_one(host.host.db.pool())
                        .await
                        .expect("owner");
                let found: String = sqlx::Row::try_get(&row, 0).expect("owner value");
                assert_eq!(found, owner, "owner of {table}");
            }
            // Resetting the role inside a statement falls back to the
            // plugin's own login, not the host's user.
            let (status, body) = host
                .probe(
                    "sql",
                    "SELECT set_config('role', 'none', true) AS r, \
                 query_to_xml('SELECT count(*) FROM plinth_plugins', true, true, '')::text AS x",
                )
                .await;
            assert_eq!(status, 403, "a reset role reaches no host table: {body}");
            // A type the driver cannot pass on says what to do.
            let (status, body) = host.probe("sql", "SELECT now() AS t").await;
            let message = body["error"].as_str().unwrap_or_default();
            assert_eq!(status, 500, "{body}");
            assert!(message.contains("cast it to text"), "{message}");
        }
        host.stop().await;
    }
}

/// A statement that runs for about 15 s unless the database stops it.
fn fifteen_seconds(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Postgres => "SELECT pg_sleep(15)",
        DbKind::Mysql => "SELECT SLEEP(15)",
        // CPU-bound: SQLite has no sleep; this counts without end.
        DbKind::Sqlite => {
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
        }
    }
}

/// How many plugin statements like `needle` the server is still running.
async fn still_running(host: &TestHost, kind: DbKind, needle: &str) -> i64 {
    let sql = match kind {
        DbKind::Postgres => {
            "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' \
             AND query LIKE $1 AND pid <> pg_backend_pid()"
        }
        DbKind::Mysql => {
            "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE ? \
             AND id <> CONNECTION_ID()"
        }
        DbKind::Sqlite => return 0,
    };
    let row = sqlx::query(sql)
        .bind(format!("{needle}%"))
        .fetch_one(host.host.db.pool())
        .await
        .expect("activity");
    sqlx::Row::try_get::<i64, _>(&row, 0).expect("activity count")
}

#[tokio::test]
async fn a_fifteen_second_query_is_stopped_in_the_database_and_eight_leave_the_host_working() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = start(&db, data.path(), 1000).await;
        host.host
            .db
            .plugin_sql()
            .switch_off_guard_for_tests("probe")
            .expect("dev mode allows the switch");
        add_goods_item(&host, "B-1").await;
        let stmt = fifteen_seconds(db.kind);

        let started = Instant::now();
        let (status, body) = host.probe("sql", stmt).await;
        let took = started.elapsed();
        assert_ne!(status, 200, "{}: the query cannot finish: {body}", db.kind);
        let message = body["error"].as_str().unwrap_or_default().to_owned();
        assert!(
            took < Duration::from_secs(6),
            "{}: stopped near its time limit, took {took:?}: {message}",
            db.kind
        );
        assert!(
            message.contains("time limit"),
            "{}: the error names the time limit: {message}",
            db.kind
        );
        assert_eq!(
            still_running(&host, db.kind, stmt).await,
            0,
            "{}: the statement no longer runs in the database",
            db.kind
        );

        // Eight at once: the plugin gets only its share of the pool.
        let mut calls = Vec::new();
        for _ in 0..8 {
            let client = host.client.clone();
            let url = host.url("/p/probe/sql");
            calls.push(tokio::spawn(async move {
                client
                    .get(url)
                    .query(&[("stmt", stmt)])
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let during = Instant::now();
        host_write(&host, "during")
            .await
            .unwrap_or_else(|e| panic!("{}: host write while eight run: {e}", db.kind));
        let response = host.get("/p/goods/api/items").await;
        assert_eq!(
            response.status().as_u16(),
            200,
            "{}: another plugin's query works while eight run",
            db.kind
        );
        assert!(
            during.elapsed() < Duration::from_secs(3),
            "{}: the host and goods did not wait for the probe: {:?}",
            db.kind,
            during.elapsed()
        );
        for call in calls {
            let status = call.await.expect("joined").expect("answered");
            assert_ne!(status, 200, "{}", db.kind);
        }
        assert_eq!(
            still_running(&host, db.kind, stmt).await,
            0,
            "{}: none of the eight runs on in the database",
            db.kind
        );
        host.stop().await;
    }
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[tokio::test]
async fn a_thousand_rows_of_one_megabyte_fail_with_a_size_error_and_bounded_memory() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = start(&db, data.path(), 5000).await;
        host.host
            .db
            .plugin_sql()
            .switch_off_guard_for_tests("probe")
            .expect("dev mode allows the switch");
        let megabyte = match db.kind {
            DbKind::Sqlite => "printf('%.*c', 1000000, 'x')",
            DbKind::Postgres => "repeat('x', 1000000)",
            DbKind::Mysql => "REPEAT('x', 1000000)",
        };
        let stmt = format!(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000) \
             SELECT n, {megabyte} AS big FROM r"
        );
        let before = vm_rss_kib();
        let (status, body) = host.probe("sql", &stmt).await;
        let after = vm_rss_kib();
        let message = body["error"].as_str().unwrap_or_default();
        assert_eq!(status, 500, "{}: {body}", db.kind);
        assert!(
            message.contains("larger than") && message.contains("MiB"),
            "{}: a size error: {message}",
            db.kind
        );
        // The whole result is about 1 GB; the host reads at most the cap
        // (16 MiB with the default 64 MiB plugin memory) plus one row.
        let grew_mib = after.saturating_sub(before) / 1024;
        eprintln!("{}: host RSS grew {grew_mib} MiB", db.kind);
        assert!(
            grew_mib < 200,
            "{}: host memory stays bounded, grew {grew_mib} MiB",
            db.kind
        );
        host.stop().await;
    }
}

#[tokio::test]
async fn a_long_sqlite_write_does_not_fail_the_hosts_writes_or_an_install() {
    let Some(db) = TestDb::create(DbKind::Sqlite).await else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    // A long call budget, so only the SQLite write limit stops the write.
    let host = start(&db, data.path(), 20_000).await;
    host.host
        .db
        .plugin_sql()
        .switch_off_guard_for_tests("probe")
        .expect("dev mode allows the switch");
    let long_write = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
                      INSERT INTO probe_notes (body) SELECT 'x' FROM r";
    let writer = {
        let client = host.client.clone();
        let url = host.url("/p/probe/exec");
        tokio::spawn(async move {
            let started = Instant::now();
            let response = client
                .get(url)
                .query(&[("stmt", long_write)])
                .send()
                .await
                .expect("answered");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    host_write(&host, "while the plugin writes")
        .await
        .expect("the host's own write waits and succeeds");
    let (status, body) = host
        .admin()
        .install(crate::support::package("hello-0.1.0"), "install")
        .await;
    assert!(
        (200..300).contains(&status),
        "an install during the plugin's write succeeds: {body}"
    );
    let (status, body, took) = writer.await.expect("joined");
    assert_eq!(status, 500, "the endless write was stopped: {body}");
    assert!(
        took < Duration::from_secs(8),
        "stopped before the host's busy time-out would fail its writes: {took:?}"
    );
    host.stop().await;
}

#[tokio::test]
async fn mariadb_file_access_is_refused_and_reads_or_writes_nothing() {
    let Some(db) = TestDb::create(DbKind::Mysql).await else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let host = start(&db, data.path(), 2000).await;
    let secret = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let secret = secret.trim();
    let out = std::env::temp_dir().join(format!("plinth_outfile_{:08x}", rand::random::<u32>()));
    let out_path = out.display().to_string();
    let statements = [
        "SELECT LOAD_FILE('/etc/hostname') AS f".to_owned(),
        "SELECT 1 AS n /*!, LOAD_FILE('/etc/hostname') */".to_owned(),
        format!("SELECT id FROM probe_notes INTO OUTFILE '{out_path}'"),
        format!("SELECT 1 AS n /*!50000 INTO OUTFILE '{out_path}' */"),
        format!("SELECT 1 AS n /*M! INTO DUMPFILE '{out_path}' */"),
    ];
    // With the guard on, and with it off (the database's own wall alone).
    for guard in ["on", "off"] {
        if guard == "off" {
            host.host
                .db
                .plugin_sql()
                .switch_off_guard_for_tests("probe")
                .expect("dev mode allows the switch");
        }
        for stmt in &statements {
            let (status, body) = host.probe("sql", stmt).await;
            let text = body.to_string();
            assert!(
                secret.is_empty() || !text.contains(secret),
                "guard {guard}: {stmt} read a file: {text}"
            );
            assert!(
                !out.exists(),
                "guard {guard}: {stmt} wrote {out_path} (status {status})"
            );
            // A write the server sees is refused by it; with the guard on, a
            // comment may instead never reach the server (nothing is written
            // either way, asserted above).
            let server_sees_write = (stmt.contains("OUTFILE") || stmt.contains("DUMPFILE"))
                && (guard == "off" || !stmt.contains("/*"));
            if server_sees_write {
                assert_ne!(status, 200, "guard {guard}: {stmt} is refused: {text}");
            }
        }
    }
    host.stop().await;
}

/// The host's own database user.
async fn host_user(host: &TestHost, kind: DbKind) -> String {
    let sql = match kind {
        DbKind::Mysql => "SELECT CAST(SUBSTRING_INDEX(CURRENT_USER(), '@', 1) AS CHAR)",
        DbKind::Postgres => "SELECT CAST(current_user AS TEXT)",
        DbKind::Sqlite => return String::new(),
    };
    let row = sqlx::query(sql)
        .fetch_one(host.host.db.pool())
        .await
        .expect("current user");
    sqlx::Row::try_get(&row, 0).expect("user")
}

/// Statements a hostile migration file or install hook tries, each of
/// which must leave `goods_items` and the host's tables as they were.
fn hostile_install_statements(kind: DbKind, host_user: &str) -> Vec<String> {
    let mut statements = vec![
        "UPDATE goods_items SET stock = 0".to_owned(),
        "DELETE FROM goods_items".to_owned(),
        "DROP TABLE goods_items".to_owned(),
        "INSERT INTO goods_items (sku, name, price_cents, stock, created_at) \
         VALUES ('X', 'x', 1, 1, 0)"
            .to_owned(),
        "CREATE TABLE probe_copy AS SELECT * FROM plinth_plugins".to_owned(),
    ];
    if kind == DbKind::Postgres {
        // The plugin's statements run logged in as its own role: nothing
        // switches back to the host's user.
        for switch in [
            "RESET ROLE".to_owned(),
            "SELECT set_config('role', 'none', false)".to_owned(),
            format!("SET ROLE \"{host_user}\""),
            format!("SET SESSION AUTHORIZATION \"{host_user}\""),
            "SET SESSION AUTHORIZATION DEFAULT".to_owned(),
        ] {
            statements.push(format!("{switch};\nUPDATE goods_items SET stock = 0"));
        }
        statements.push(
            "SELECT set_config('role', 'none', true) AS r, \
             query_to_xml('SELECT count(*) FROM plinth_plugins', true, true, '')::text AS x"
                .to_owned(),
        );
    }
    statements
}

/// Whether goods' item and the host's records are as they were.
async fn nothing_changed(host: &TestHost, kind: DbKind, what: &str) {
    assert_eq!(count(host, "goods_items").await, 1, "{kind}: {what}");
    let items: Value = host
        .get("/p/goods/api/items")
        .await
        .json()
        .await
        .expect("items");
    assert_eq!(items[0]["stock"], 3, "{kind}: stock unchanged after {what}");
    let probe = plinth_host::db::store::installed_plugin(&host.host.db, "probe")
        .await
        .expect("read plugins")
        .expect("probe installed");
    assert_eq!(probe.version, "0.1.0", "{kind}: the upgrade failed: {what}");
    host_write(host, "after a hostile install")
        .await
        .unwrap_or_else(|e| panic!("{kind}: the host writes after {what}: {e}"));
}

fn refused_by_the_database(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("denied") || m.contains("refused") || m.contains("must be owner")
}

#[tokio::test]
async fn with_the_guard_off_migrations_touching_other_tables_are_refused_by_the_database() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = start(&db, data.path(), 2000).await;
        add_goods_item(&host, "M-1").await;
        host.host
            .db
            .plugin_sql()
            .switch_off_guard_for_tests("probe")
            .expect("dev mode allows the switch");
        let user = host_user(&host, db.kind).await;
        for stmt in hostile_install_statements(db.kind, &user) {
            let file = format!("{stmt};\n");
            let extra: Vec<(String, &str)> = ["sqlite", "postgres", "mysql"]
                .iter()
                .map(|d| (format!("sql/{d}/0009_hostile.sql"), file.as_str()))
                .collect();
            let extra: Vec<(&str, &str)> = extra.iter().map(|(p, c)| (p.as_str(), *c)).collect();
            let package = crate::support::derived_package("probe-0.1.0", "0.2.0", &extra);
            let (status, body) = host.admin().install(package, "upgrade").await;
            let message = crate::support::Admin::message(&body);
            assert_eq!(
                status, 422,
                "{}: {stmt} must fail the install: {body}",
                db.kind
            );
            assert!(
                refused_by_the_database(&message),
                "{}: the database refuses {stmt}: {message}",
                db.kind
            );
            nothing_changed(&host, db.kind, &stmt).await;
        }
        host.stop().await;
    }
}

#[tokio::test]
async fn with_the_guard_off_an_install_hook_touching_other_tables_is_refused_by_the_database() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let host = start(&db, data.path(), 2000).await;
        add_goods_item(&host, "H-1").await;
        host.host
            .db
            .plugin_sql()
            .switch_off_guard_for_tests("probe")
            .expect("dev mode allows the switch");
        let user = host_user(&host, db.kind).await;
        let placeholder = match db.kind {
            DbKind::Postgres => "$1",
            _ => "?",
        };
        for stmt in hostile_install_statements(db.kind, &user) {
            // probe's hook runs the statements kept in its rows with a
            // negative id, in order, on an upgrade.
            sqlx::query("DELETE FROM probe_notes WHERE id < 0")
                .execute(host.host.db.pool())
                .await
                .expect("clear the hook's script");
            for (i, part) in stmt.split(";\n").enumerate() {
                sqlx::query(&format!(
                    "INSERT INTO probe_notes (id, body) VALUES ({}, {placeholder})",
                    -(i as i64) - 1
                ))
                .bind(part)
                .execute(host.host.db.pool())
                .await
                .expect("store the hook's script");
            }
            let package = crate::support::derived_package("probe-0.1.0", "0.2.0", &[]);
            let (status, body) = host.admin().install(package, "upgrade").await;
            let message = crate::support::Admin::message(&body);
            assert_eq!(
                status, 422,
                "{}: {stmt} must fail the hook: {body}",
                db.kind
            );
            assert!(
                refused_by_the_database(&message),
                "{}: the database refuses {stmt}: {message}",
                db.kind
            );
            nothing_changed(&host, db.kind, &stmt).await;
        }
        // The hook itself works: a statement on its own table succeeds.
        sqlx::query("DELETE FROM probe_notes WHERE id < 0")
            .execute(host.host.db.pool())
            .await
            .expect("clear the hook's script");
        sqlx::query(&format!(
            "INSERT INTO probe_notes (id, body) VALUES (-1, {placeholder})"
        ))
        .bind("INSERT INTO probe_notes (id, body) VALUES (7, 'from the hook')")
        .execute(host.host.db.pool())
        .await
        .expect("store the hook's script");
        let package = crate::support::derived_package("probe-0.1.0", "0.2.0", &[]);
        let (status, body) = host.admin().install(package, "upgrade").await;
        assert!(
            (200..300).contains(&status),
            "{}: a hook on its own table: {body}",
            db.kind
        );
        assert_eq!(
            count(&host, "probe_notes WHERE id = 7").await,
            1,
            "{}",
            db.kind
        );
        host.stop().await;
    }
}

/// A login user of the test database without the rights the second wall
/// needs: PostgreSQL without CREATEROLE, MariaDB without CREATE USER and
/// the grant option. Dropped by [`drop_weak_user`].
async fn weak_user(db: &TestDb) -> (String, String) {
    let name = format!("plinth_t_weak_{:08x}", rand::random::<u32>());
    let admin = sqlx::AnyPool::connect(&db.url).await.expect("admin pool");
    let database = db.url.rsplit('/').next().expect("database name").to_owned();
    let statements = match db.kind {
        DbKind::Postgres => vec![
            format!("CREATE ROLE {name} LOGIN"),
            format!("GRANT ALL ON DATABASE {database} TO {name}"),
            format!("GRANT ALL ON SCHEMA public TO {name}"),
        ],
        _ => vec![
            format!("CREATE USER '{name}'@'%' IDENTIFIED BY 'weak-pw'"),
            format!("GRANT ALL ON `{database}`.* TO '{name}'@'%'"),
        ],
    };
    for sql in statements {
        sqlx::raw_sql(&sql)
            .execute(&admin)
            .await
            .expect("weak user");
    }
    admin.close().await;
    let (scheme, rest) = db.url.split_once("://").expect("url");
    let host_and_db = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let url = match db.kind {
        DbKind::Postgres => format!("{scheme}://{name}@{host_and_db}"),
        _ => format!("{scheme}://{name}:weak-pw@{host_and_db}"),
    };
    (name, url)
}

async fn drop_weak_user(db: &TestDb, name: &str) {
    let admin = sqlx::AnyPool::connect(&db.url).await.expect("admin pool");
    let sql = match db.kind {
        DbKind::Postgres => {
            let _ = sqlx::raw_sql(&format!("DROP OWNED BY {name}"))
                .execute(&admin)
                .await;
            format!("DROP ROLE IF EXISTS {name}")
        }
        _ => format!("DROP USER IF EXISTS '{name}'@'%'"),
    };
    let _ = sqlx::raw_sql(&sql).execute(&admin).await;
    admin.close().await;
}

#[tokio::test]
async fn production_refuses_a_database_user_that_cannot_confine_plugins() {
    for kind in [DbKind::Postgres, DbKind::Mysql] {
        let Some(db) = TestDb::create(kind).await else {
            continue;
        };
        let (name, url) = weak_user(&db).await;
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(&db, data.path(), &[("goods", "1.0.0")]);
        config.database.url = url;
        config.mode = plinth_host::config::Mode::Production;
        config.admin.token = "a-long-enough-production-admin-token-0123456789".into();
        let err = TestHost::start(config.clone())
            .await
            .err()
            .unwrap_or_else(|| panic!("{kind}: production starts only with the rights"))
            .to_string();
        let right = match kind {
            DbKind::Postgres => "CREATEROLE",
            _ => "CREATE USER and GRANT OPTION",
        };
        assert!(
            err.contains(right) && err.contains("production mode"),
            "{kind}: the refusal names the missing right: {err}"
        );
        // Dev mode runs, with the parser guard as the only wall.
        config.mode = plinth_host::config::Mode::Dev;
        let host = TestHost::start(config).await.expect("dev mode starts");
        let missing = host
            .host
            .db
            .plugin_sql()
            .rights()
            .missing()
            .map(str::to_owned);
        assert!(
            missing.as_deref().is_some_and(|m| m.contains(right)),
            "{kind}: dev mode knows what is missing: {missing:?}"
        );
        add_goods_item(&host, "W-1").await;
        host.stop().await;
        drop_weak_user(&db, &name).await;
    }
}
