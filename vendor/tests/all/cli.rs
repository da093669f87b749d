//! The `plinth-vendor` binary: commands, output, exit codes and messages,
//! and that a push made by a separate process reaches a running server.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use plinth_package::protocol::VendorMessage;

use crate::support::{TestDb, TestVendor, agent, all_dbs, package_zip, recv_within};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary against `db_url` with a store and key under `dir`.
async fn vendor_cli(db_url: &str, dir: &std::path::Path, args: &[&str]) -> Run {
    vendor_cli_env(db_url, dir, args, &[]).await
}

async fn vendor_cli_env(
    db_url: &str,
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_plinth-vendor"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("PLINTH_VENDOR_KEY")
        .env_remove("PLINTH_VENDOR_BIND")
        .env_remove("RUST_LOG")
        .env("PLINTH_VENDOR_DB", db_url)
        .env("PLINTH_VENDOR_STORE", dir.join("store"))
        .env("PLINTH_VENDOR_KEY_FILE", dir.join("vendor.key"))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("plinth-vendor timed out")
        .expect("run plinth-vendor");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn ok(run: &Run) -> &str {
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    &run.stdout
}

fn key_path(dir: &std::path::Path) -> PathBuf {
    dir.join("vendor.key")
}

#[tokio::test]
async fn key_generate_writes_a_private_key_once_and_prints_the_public_key() {
    let db = TestDb::create(crate::support::DbKind::Sqlite)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = key_path(dir.path());
    let run = vendor_cli(
        &db.url,
        dir.path(),
        &["key", "generate", "--out", out.to_str().unwrap()],
    )
    .await;
    let public = ok(&run).trim().to_string();
    let secret = std::fs::read_to_string(&out).unwrap();
    let key = plinth_package::VendorKey::from_hex(&secret).unwrap();
    assert_eq!(key.public_hex(), public);
    assert!(run.stderr.contains("vendor.public_key"), "{}", run.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = vendor_cli(
        &db.url,
        dir.path(),
        &["key", "generate", "--out", out.to_str().unwrap()],
    )
    .await;
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("refusing to overwrite"),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), secret);
}

#[tokio::test]
async fn customer_add_prints_one_token_per_name_and_a_duplicate_adds_none() {
    for db in all_dbs().await {
        let dir = tempfile::tempdir().unwrap();
        let run = vendor_cli(&db.url, dir.path(), &["customer", "add", "acme", "beta"]).await;
        let lines: Vec<&str> = ok(&run).lines().collect();
        assert_eq!(lines.len(), 2);
        for (line, name) in lines.iter().zip(["acme", "beta"]) {
            let (n, token) = line.split_once(' ').unwrap();
            assert_eq!(n, name);
            assert_eq!(token.len(), 64);
        }
        let dup = vendor_cli(&db.url, dir.path(), &["customer", "add", "gamma", "beta"]).await;
        assert_eq!(dup.code, 1);
        assert!(
            dup.stderr.contains("\"beta\" already exists"),
            "{}",
            dup.stderr
        );
        let list = vendor_cli(&db.url, dir.path(), &["customer", "list"]).await;
        let listed = ok(&list);
        assert!(
            listed.contains("acme") && listed.contains("beta"),
            "{listed}"
        );
        assert!(!listed.contains("gamma"), "{listed}");
    }
}

#[tokio::test]
async fn publish_assign_plan_push_and_status_work_from_the_command_line() {
    for db in all_dbs().await {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cli = |args: Vec<String>| {
            let url = db.url.clone();
            let dir = d.to_path_buf();
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                vendor_cli(&url, &dir, &args).await
            }
        };
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ok(&cli(s(&[
            "key",
            "generate",
            "--out",
            key_path(d).to_str().unwrap(),
        ]))
        .await);
        let base = package_zip(d, "base", "1.0.0", &[]);
        let goods = package_zip(d, "goods", "1.1.0", &[("base", "^1")]);
        let hello = package_zip(d, "hello", "0.1.0", &[("base", "^2")]);
        for zip in [&base, &goods, &hello] {
            let run = cli(s(&["publish", zip.to_str().unwrap()])).await;
            assert!(ok(&run).starts_with("published "), "{}", run.stdout);
        }
        let again = cli(s(&["publish", goods.to_str().unwrap()])).await;
        assert!(ok(&again).contains("already published"), "{}", again.stdout);
        ok(&cli(s(&["customer", "add", "acme", "beta"])).await);

        let assigned = cli(s(&["assign", "acme", "goods", "^1"])).await;
        assert!(
            ok(&assigned).contains("acme: plan base 1.0.0, goods 1.1.0"),
            "{}",
            assigned.stdout
        );
        let unsat = cli(s(&["assign", "beta", "hello", "*"])).await;
        let text = ok(&unsat);
        assert!(
            text.contains("beta: no plan") && text.contains("hello"),
            "{text}"
        );

        let plan = cli(s(&["plan", "acme"])).await;
        let text = ok(&plan);
        let base_at = text.find("base 1.0.0").unwrap();
        let goods_at = text.find("goods 1.1.0").unwrap();
        assert!(base_at < goods_at, "{text}");
        let no_plan = cli(s(&["plan", "beta"])).await;
        assert_eq!(no_plan.code, 1);
        assert!(
            no_plan.stderr.contains("no plan for customer beta"),
            "{}",
            no_plan.stderr
        );

        // Push to all: acme is pushed, beta is reported and not pushed.
        let push = cli(s(&["push", "--ttl-secs", "600"])).await;
        assert_eq!(push.code, 1, "{}", push.stdout);
        assert!(
            push.stdout.contains("acme: pushed deployment "),
            "{}",
            push.stdout
        );
        assert!(push.stdout.contains("beta: NOT pushed"), "{}", push.stdout);

        let status = cli(s(&["status", "acme", "--json"])).await;
        let json: serde_json::Value = serde_json::from_str(ok(&status)).unwrap();
        assert_eq!(json["customers"][0]["deployments"][0]["outcome"], "open");
        assert_eq!(
            json["customers"][0]["deployments"][0]["packages"][1]["name"],
            "goods"
        );
        let status = cli(s(&["status"])).await;
        let text = ok(&status);
        assert!(
            text.contains("acme  never connected") && text.contains("assigned: goods ^1"),
            "{text}"
        );
        assert!(
            text.contains("beta") && !text.contains("beta  connected"),
            "{text}"
        );

        let cancel = cli(s(&["cancel", "acme", "--reason", "oops"])).await;
        assert!(
            ok(&cancel).contains("acme: cancelled deployment"),
            "{}",
            cancel.stdout
        );
        let unassign = cli(s(&["unassign", "beta", "hello"])).await;
        assert!(
            ok(&unassign).contains("beta: plan nothing"),
            "{}",
            unassign.stdout
        );
    }
}

#[tokio::test]
async fn errors_say_what_was_wrong_and_what_to_do() {
    let db = TestDb::create(crate::support::DbKind::Sqlite)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["push"], "plinth-vendor key generate"),
        (vec!["plan", "nobody"], "customer add nobody"),
        (vec!["publish", "missing.zip"], "cannot read missing.zip"),
        (vec!["customer", "add", "Not Valid"], "lowercase"),
    ];
    for (args, expected) in cases {
        let run = vendor_cli(&db.url, d, &args).await;
        assert_eq!(run.code, 1, "{args:?}");
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    ok(&vendor_cli(&db.url, d, &["customer", "add", "acme"]).await);
    let run = vendor_cli(&db.url, d, &["assign", "acme", "goods", "two"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("not a valid semver range") && run.stderr.contains("^1.2"),
        "{}",
        run.stderr
    );
    let run = vendor_cli("mysql://x/y", d, &["status"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("postgres://"), "{}", run.stderr);
    let run = vendor_cli_env(&db.url, d, &["push"], &[("PLINTH_VENDOR_KEY", "abc")]).await;
    // --key-file (from the env) wins over PLINTH_VENDOR_KEY, and is missing.
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("vendor.key"), "{}", run.stderr);
}

#[tokio::test]
async fn publish_with_push_and_a_cli_push_reach_a_connected_agent() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        let d = tv.dir.path();
        std::fs::write(key_path(d), tv.key.to_hex()).unwrap();
        tv.publish("goods", "1.0.0", &[]).await;
        let tokens = tv.customers(&["acme"]).await;
        tv.assign("acme", "goods", "^1").await;
        let server = tv.serve().await;
        let mut socket = agent(server.addr(), &tokens[0]).await;

        // The test vendor's store is `<dir>/store`, as the CLI is told.
        let newer = package_zip(d, "goods", "1.1.0", &[]);
        let run = vendor_cli(
            &tv.db.url,
            d,
            &["publish", newer.to_str().unwrap(), "--push"],
        )
        .await;
        let text = ok(&run);
        assert!(text.contains("customers affected: 1"), "{text}");
        assert!(text.contains("acme: pushed deployment"), "{text}");
        match recv_within(&mut socket, Duration::from_secs(3)).await {
            Some(VendorMessage::Offer { deployment, .. }) => {
                assert!(
                    deployment.manifest.contains("\"version\":\"1.1.0\""),
                    "{}",
                    deployment.manifest
                );
            }
            other => panic!("expected an offer, got {other:?}"),
        }
        let run = vendor_cli(&tv.db.url, d, &["cancel", "acme"]).await;
        ok(&run);
        assert!(matches!(
            recv_within(&mut socket, Duration::from_secs(3)).await,
            Some(VendorMessage::Cancel { .. })
        ));
        server.shutdown().await.unwrap();
    }
}
