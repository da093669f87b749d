//! `cargo xtask bench-events [N]`: the event bus end to end, beside the raw
//! rate of the same database, in one run, written to `docs/BENCHMARKS.md`.
//!
//! End to end: N requests to the `probe` plugin, each publishing one event
//! on `probe.bench` (8 clients at once); the clock runs from the first
//! request to the moment the last delivery is recorded `delivered` (probe
//! acknowledges `probe.bench` without work). Raw: N times one `INSERT` and
//! one `DELETE` through sqlx on one connection of the same database. Runs
//! on SQLite and, when it answers at 127.0.0.1:5432, PostgreSQL.
//!
//! The host is the dev-profile `plinth` binary the tests use (a release
//! build of the host does not fit this machine's budget); the raw loop runs
//! in this dev-profile process, so both sides are unoptimised alike.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench::{machine, merge_section};
use crate::build_plugins;
use crate::util::{cargo, copy_dir, target_dir, workspace_root};

const BEGIN: &str = "<!-- BEGIN events (cargo xtask bench-events) -->";
const END: &str = "<!-- END events -->";
const CLIENTS: usize = 8;
const NOTE: &str = " The raw loop commits each statement on its own on one connection, so on PostgreSQL it is bounded by the WAL flush of every commit; the bus's commits overlap across the publishing requests and the relay, which is how it can pass the raw rate there.";
const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Figures {
    database: &'static str,
    events_per_sec: f64,
    raw_per_sec: f64,
}

pub fn run(args: &[String]) -> Result<()> {
    let n: usize = match args.first() {
        Some(arg) => arg
            .parse()
            .with_context(|| format!("N must be a number, not `{arg}`"))?,
        None => 2000,
    };
    let root = workspace_root();
    build_plugins::run(&[])?;
    let status = cargo(&root)
        .args(["build", "-p", "plinth-host", "--bin", "plinth"])
        .status()?;
    if !status.success() {
        bail!("building the host failed ({status})");
    }
    let target = target_dir(&root);
    let plinth = target.join("debug").join("plinth");
    let runtime = tokio::runtime::Runtime::new()?;
    sqlx::any::install_default_drivers();
    let work = std::env::temp_dir().join(format!("plinth-bench-events-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);

    let mut figures = Vec::new();
    let sqlite = format!(
        "sqlite://{}",
        work.join("sqlite").join("plinth.db").display()
    );
    figures.push(runtime.block_on(measure(
        "SQLite",
        &plinth,
        &target,
        &work.join("sqlite"),
        &sqlite,
        n,
    ))?);
    let pg_name = format!("plinth_bench_events_{}", std::process::id());
    let postgres = runtime.block_on(async {
        let admin = sqlx::AnyPool::connect(POSTGRES_ADMIN).await.ok()?;
        sqlx::raw_sql(&format!("CREATE DATABASE {pg_name}"))
            .execute(&admin)
            .await
            .ok()?;
        Some(admin)
    });
    if let Some(admin) = &postgres {
        let url = format!("postgres://postgres@127.0.0.1:5432/{pg_name}");
        let result = runtime.block_on(measure(
            "PostgreSQL",
            &plinth,
            &target,
            &work.join("postgres"),
            &url,
            n,
        ));
        runtime.block_on(async {
            let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"))
                .execute(admin)
                .await;
        });
        figures.push(result?);
    } else {
        println!("PostgreSQL not reachable at {POSTGRES_ADMIN}; SQLite only");
    }
    let _ = std::fs::remove_dir_all(&work);

    let report = render(&figures, n);
    let path = root.join("docs").join("BENCHMARKS.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, merge_section(&existing, &report, BEGIN, END))?;
    println!("wrote {}", path.display());
    Ok(())
}

async fn measure(
    database: &'static str,
    plinth: &Path,
    target: &Path,
    dir: &Path,
    url: &str,
    n: usize,
) -> Result<Figures> {
    let data = dir.join("data");
    copy_dir(
        &target.join("plugins").join("probe-0.1.0"),
        &data.join("plugins").join("probe").join("0.1.0"),
    )?;
    let addr = free_port()?;
    let config = serde_json::json!({
        "data_dir": data,
        "public_dir": workspace_root().join("public"),
        "server": { "bind": addr.to_string() },
        "database": { "url": url, "schema_dir": workspace_root().join("common-sql") },
        "plugins": [{ "name": "probe", "version": "0.1.0" }],
    });
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
    let child = Command::new(plinth)
        .args(["serve", "--config"])
        .arg(&config_path)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .context("starting plinth serve")?;
    let _host = Guard(child);
    let started = Instant::now();
    while status(addr, "GET", "/p/probe/ok") != Some(200) {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{database}: the host did not serve within 60 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let pool = sqlx::AnyPool::connect(url).await?;
    // Warm-up: instances, statement caches, the relay's worker.
    publish_all(addr, 50).await?;
    wait_delivered(&pool, 50).await?;

    let clock = Instant::now();
    publish_all(addr, n).await?;
    wait_delivered(&pool, (50 + n) as i64).await?;
    let events_per_sec = n as f64 / clock.elapsed().as_secs_f64();

    let create = if database == "PostgreSQL" {
        "CREATE TABLE plinth_bench_raw (id BIGINT PRIMARY KEY, payload VARCHAR(64) NOT NULL)"
    } else {
        "CREATE TABLE plinth_bench_raw (id INTEGER PRIMARY KEY, payload VARCHAR(64) NOT NULL)"
    };
    sqlx::query(create).execute(&pool).await?;
    let (insert, delete) = if database == "PostgreSQL" {
        (
            "INSERT INTO plinth_bench_raw (id, payload) VALUES ($1, $2)",
            "DELETE FROM plinth_bench_raw WHERE id = $1",
        )
    } else {
        (
            "INSERT INTO plinth_bench_raw (id, payload) VALUES (?, ?)",
            "DELETE FROM plinth_bench_raw WHERE id = ?",
        )
    };
    let mut conn = pool.acquire().await?;
    let clock = Instant::now();
    for id in 0..n as i64 {
        sqlx::query(insert)
            .bind(id)
            .bind("bench")
            .execute(&mut *conn)
            .await?;
        sqlx::query(delete).bind(id).execute(&mut *conn).await?;
    }
    let raw_per_sec = n as f64 / clock.elapsed().as_secs_f64();
    drop(conn);
    pool.close().await;
    println!(
        "{database}: {events_per_sec:.0} events/s end to end, raw insert+delete {raw_per_sec:.0}/s ({:.0}%)",
        100.0 * events_per_sec / raw_per_sec
    );
    Ok(Figures {
        database,
        events_per_sec,
        raw_per_sec,
    })
}

/// `n` publishing requests from `CLIENTS` threads.
async fn publish_all(addr: SocketAddr, n: usize) -> Result<()> {
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let share = n / CLIENTS + usize::from(c < n % CLIENTS);
        clients.push(tokio::task::spawn_blocking(move || {
            for _ in 0..share {
                if status(addr, "POST", "/p/probe/publish?topic=probe.bench") != Some(200) {
                    bail!("a publishing request failed");
                }
            }
            Ok(())
        }));
    }
    for client in clients {
        client.await??;
    }
    Ok(())
}

async fn wait_delivered(pool: &sqlx::AnyPool, want: i64) -> Result<()> {
    let started = Instant::now();
    loop {
        let (done,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM plinth_event_deliveries WHERE state = 'delivered'",
        )
        .fetch_one(pool)
        .await?;
        if done >= want {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("only {done} of {want} events were delivered in 600 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

fn status(addr: SocketAddr, method: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .ok()?;
    let mut head = [0u8; 16];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn render(figures: &[Figures], n: usize) -> String {
    let mut out = format!(
        "{BEGIN}\n## Event bus\n\n{n} events per database, published by {CLIENTS} concurrent \
         clients each sending one request per event to the `probe` plugin, until the last \
         delivery is recorded; beside the same database doing one INSERT and one DELETE per \
         event through sqlx on one connection, in the same run. Dev-profile host and client \
         (see `xtask/src/bench_events.rs`).{NOTE} Machine: {}.\n\n\
         | database | events/s end to end | raw insert+delete/s | bus / raw |\n|---|---|---|---|\n",
        machine()
    );
    for f in figures {
        out.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.0}% |\n",
            f.database,
            f.events_per_sec,
            f.raw_per_sec,
            100.0 * f.events_per_sec / f.raw_per_sec
        ));
    }
    out.push_str(END);
    out
}
