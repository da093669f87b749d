//! `cargo xtask bench`: throughput and latency of the plugin routes on
//! loopback, in one run, written to `docs/BENCHMARKS.md`.
//!
//! Targets, each loaded with `wrk -t2 -c32 -d10s --latency` after a warm-up:
//! - the host's native axum route `/api/hello` (the ceiling);
//! - the `hello` plugin route `/p/hello/`;
//! - the standard `wasi:http` component `http-hello` through the host;
//! - the same component under `wasmtime serve -Scli`, when a `wasmtime`
//!   CLI is found (`$WASMTIME`, `PATH`, or `/opt/wasmtime-cli/bin`);
//! - `/p/hello/greeting` (hello's handler behind `hello.greet`), once with
//!   the bootstrap token and once with the session cookie of a `staff`
//!   user who signed in through `POST /api/auth/login`;
//! - the `rates` plugin's `/p/rates/`, one outbound call to a local
//!   upstream, against a native axum route making the same call with
//!   reqwest ([`crate::bench_outbound`]).
//!
//! Figures are only comparable within one run on one machine; the report
//! gives ratios next to the raw numbers and records the machine.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{cargo, copy_dir, http_exchange, target_dir, workspace_root};
use crate::{bench_outbound, build_plugins};

const DURATION: &str = "10s";
const CONNECTIONS: &str = "32";
const THREADS: &str = "2";

/// One wrk run's figures.
#[derive(Debug, Clone)]
struct Load {
    label: String,
    requests_per_sec: f64,
    p50: String,
    p99: String,
    errors: u64,
}

/// Kills a child process when dropped, so a failed bench leaves nothing
/// running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("bench takes no arguments (got `{arg}`)");
    }
    ensure_wrk()?;
    let root = workspace_root();
    build_plugins::run(&[])?;
    let status = cargo(&root)
        .args(["build", "--release", "-p", "plinth-host", "--bin", "plinth"])
        .status()?;
    if !status.success() {
        bail!("building the host failed ({status})");
    }
    let target = target_dir(&root);
    let plinth = target.join("release").join("plinth");
    let plugins = target.join("plugins");

    let work = std::env::temp_dir().join(format!("plinth-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    for (name, version) in [
        ("hello", "0.1.0"),
        ("http-hello", "0.1.0"),
        ("rates", "0.1.0"),
    ] {
        copy_dir(
            &plugins.join(format!("{name}-{version}")),
            &work.join("data").join("plugins").join(name).join(version),
        )?;
    }
    // One upstream for both outbound rows; the host may reach it (a
    // loopback address) only because config.json says so for `rates`.
    let upstream = bench_outbound::upstream()?;
    let upstream_url = format!("http://{}/latest", upstream.addr);
    let addr = free_port()?;
    let config = serde_json::json!({
        "data_dir": work.join("data"),
        "public_dir": root.join("public"),
        "server": { "bind": addr.to_string() },
        "admin": { "token": ADMIN_TOKEN },
        "database": {
            "url": format!("sqlite://{}", work.join("data").join("plinth.db").display()),
            "schema_dir": root.join("common-sql"),
        },
        "outbound": {
            "plugins": {
                "rates": {
                    "hosts": [format!("http://{}", upstream.addr)],
                    "allow_private": ["127.0.0.1"],
                },
            },
        },
        "plugins": [
            { "name": "hello", "version": "0.1.0" },
            { "name": "http-hello", "version": "0.1.0" },
            { "name": "rates", "version": "0.1.0", "settings": { "source_url": upstream_url } },
        ],
    });
    let config_path = work.join("config.json");
    std::fs::write(&config_path, serde_json::to_string_pretty(&config)?)?;

    let host = Guard(
        Command::new(&plinth)
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", plinth.display()))?,
    );
    wait_for(addr, "/healthz", Duration::from_secs(60))?;

    let bearer = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let token = Some(bearer.as_str());
    let cookie = format!("Cookie: {}", signed_in_staff(addr)?);
    let mut loads = vec![
        load("native axum route (/api/hello)", addr, "/api/hello", None)?,
        load("hello plugin (/p/hello/)", addr, "/p/hello/", None)?,
        load(
            "wasi:http component via host (/p/http-hello/)",
            addr,
            "/p/http-hello/",
            token,
        )?,
    ];
    // The same handler as /p/hello/, behind `hello.greet`: the caller is
    // identified and its permission checked on every request, first as the
    // bootstrap token's super-admin, then as a signed-in user whose
    // permission comes from a role grant.
    let checked = vec![
        load(
            "hello plugin, checked caller: bootstrap token (/p/hello/greeting)",
            addr,
            "/p/hello/greeting",
            token,
        )?,
        load(
            "hello plugin, checked caller: signed-in session (/p/hello/greeting)",
            addr,
            "/p/hello/greeting",
            Some(&cookie),
        )?,
    ];
    // One outbound call per request to the same upstream: through the
    // rates plugin (allow-list, address check, WIT), and natively.
    let native_outbound = bench_outbound::native(upstream_url.clone())?;
    let outbound = vec![
        load(
            "native axum route + reqwest, one outbound call (/rates)",
            native_outbound.addr,
            "/rates",
            None,
        )?,
        load(
            "rates plugin, one outbound call (/p/rates/)",
            addr,
            "/p/rates/",
            token,
        )?,
    ];
    drop(native_outbound);
    let installs = install_timings(addr, &plugins.join("hello-0.1.0"), &work)?;
    drop(host);

    let wasmtime_version = match find_wasmtime() {
        Some(wasmtime) => {
            let version = Command::new(&wasmtime)
                .arg("--version")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default();
            let serve_addr = free_port()?;
            let _serve = Guard(
                Command::new(&wasmtime)
                    .args(["serve", "-Scli", "--addr"])
                    .arg(serve_addr.to_string())
                    .arg(plugins.join("http-hello.wasm"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .with_context(|| format!("starting {}", wasmtime.display()))?,
            );
            wait_for(serve_addr, "/", Duration::from_secs(60))?;
            loads.push(load(
                "same component under `wasmtime serve -Scli`",
                serve_addr,
                "/",
                None,
            )?);
            Some(version)
        }
        None => {
            eprintln!("no wasmtime CLI found: skipping the `wasmtime serve` comparison");
            None
        }
    };
    let _ = std::fs::remove_dir_all(&work);

    drop(upstream);
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    loads.extend(checked);
    loads.extend(outbound);
    let report = render(
        &loads,
        wasmtime_version.as_deref(),
        &installs,
        &load_average,
    );
    let path = root.join("docs").join("BENCHMARKS.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, merge_report(&existing, &report))?;
    println!("{report}");
    println!("written to {}", path.display());
    Ok(())
}

fn ensure_wrk() -> Result<()> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("wrk is missing; installing it with apt-get");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-qq", "wrk"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        bail!("wrk is needed for the benchmark: install it (apt-get install wrk) and run again");
    }
    Ok(())
}

fn find_wasmtime() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("WASMTIME").map(PathBuf::from),
        Some(PathBuf::from("wasmtime")),
        Some(PathBuf::from("/opt/wasmtime-cli/bin/wasmtime")),
    ];
    candidates.into_iter().flatten().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// The status code of `GET path`, or `None` when nothing answers.
fn status_of(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 16];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn wait_for(addr: SocketAddr, path: &str, limit: Duration) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if status_of(addr, path) == Some(200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{addr}{path} did not answer 200 within {limit:?}")
}

/// Loads `path` with wrk, every request carrying `header` (a whole
/// `Name: value` line) when given.
fn load(label: &str, addr: SocketAddr, path: &str, header: Option<&str>) -> Result<Load> {
    let url = format!("http://{addr}{path}");
    let header: Vec<String> = header
        .map(|line| vec!["-H".to_owned(), line.to_owned()])
        .unwrap_or_default();
    // Warm-up: fills warm instance pools and the kernel's socket caches.
    Command::new("wrk")
        .args(["-t", THREADS, "-c", CONNECTIONS, "-d", "2s", &url])
        .args(&header)
        .output()?;
    let output = Command::new("wrk")
        .args(&header)
        .args([
            "-t",
            THREADS,
            "-c",
            CONNECTIONS,
            "-d",
            DURATION,
            "--latency",
            &url,
        ])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("wrk failed on {url}: {text}");
    }
    let parsed = parse_wrk(label, &text)
        .with_context(|| format!("cannot read wrk's output for {url}:\n{text}"))?;
    println!(
        "{label}: {:.0} req/s, p50 {}, p99 {}, errors {}",
        parsed.requests_per_sec, parsed.p50, parsed.p99, parsed.errors
    );
    Ok(parsed)
}

fn parse_wrk(label: &str, text: &str) -> Option<Load> {
    let mut requests_per_sec = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut errors = 0;
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(v)) => requests_per_sec = v.parse().ok(),
            (Some("50%"), Some(v)) => p50 = Some(v.to_owned()),
            (Some("99%"), Some(v)) => p99 = Some(v.to_owned()),
            (Some("Non-2xx"), _) => {
                errors += line
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            (Some("Socket"), Some("errors:")) => {
                errors += line
                    .split(',')
                    .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    Some(Load {
        label: label.to_owned(),
        requests_per_sec: requests_per_sec?,
        p50: p50?,
        p99: p99?,
        errors,
    })
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, {mem_gib:.0} GiB RAM, Linux {}",
        kernel.trim()
    )
}

const BEGIN: &str = "<!-- BEGIN routes (cargo xtask bench) -->";
const END: &str = "<!-- END routes -->";

/// Install-to-first-request times, in milliseconds.
#[derive(Debug, Clone)]
struct InstallTimings {
    package_bytes: usize,
    cold_ms: Vec<f64>,
    warm_ms: Vec<f64>,
}

/// The admin token the bench host is configured with.
const ADMIN_TOKEN: &str = "bench-admin-token";

/// The user the session row signs in as: `staff` is one of hello's
/// `default_roles` for `hello.greet`, so the permission comes from a role
/// grant, not from the super-admin bypass.
const STAFF_LOGIN: &str = "bench-staff";
const STAFF_PASSWORD: &str = "bench-staff-password";

/// Creates the `staff` user (as the bootstrap admin), signs them in through
/// `POST /api/auth/login` and returns their `plinth_session=…` cookie.
fn signed_in_staff(addr: SocketAddr) -> Result<String> {
    let user = serde_json::json!({
        "login": STAFF_LOGIN, "display_name": "Bench staff",
        "password": STAFF_PASSWORD, "roles": ["staff"],
    });
    let (status, _, body) = http_exchange(
        addr,
        "POST",
        "/api/admin/users",
        &format!("Authorization: Bearer {ADMIN_TOKEN}\r\n"),
        "application/json",
        user.to_string().as_bytes(),
    )?;
    if status != 201 {
        bail!("creating the bench user answered {status}: {body}");
    }
    let login = serde_json::json!({ "login": STAFF_LOGIN, "password": STAFF_PASSWORD });
    let (status, head, body) = http_exchange(
        addr,
        "POST",
        "/api/auth/login",
        "",
        "application/json",
        login.to_string().as_bytes(),
    )?;
    if status != 200 {
        bail!("signing the bench user in answered {status}: {body}");
    }
    let cookie = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("set-cookie"))
        .and_then(|(_, value)| value.trim().split(';').next())
        .map(str::to_owned)
        .context("the sign-in answer set no cookie")?;
    // The cookie must name a caller who holds the permission.
    let (status, _, body) = http_exchange(
        addr,
        "GET",
        "/p/hello/greeting",
        &format!("Cookie: {cookie}\r\n"),
        "text/plain",
        b"",
    )?;
    if status != 200 {
        bail!("the signed-in bench user gets {status} from /p/hello/greeting: {body}");
    }
    Ok(cookie)
}

/// Times `POST /api/admin/plugins` of a ~1 MiB package until its route
/// first answers 200. Cold: the component's bytes are new to the compile
/// cache (a unique custom section is appended each time). Warm: the same
/// package again after removing it, so the compiled code is cached.
fn install_timings(addr: SocketAddr, hello_dir: &Path, work: &Path) -> Result<InstallTimings> {
    let wasm = std::fs::read(hello_dir.join("plugin.wasm"))?;
    let manifest = std::fs::read_to_string(hello_dir.join("plugin.toml"))?
        .replace("name = \"hello\"", "name = \"bench-hello\"")
        // Codes live under the plugin's name.
        .replace("\"hello.", "\"bench-hello.");
    let make = |salt: u32| -> Result<Vec<u8>> {
        let dir = work.join(format!("bench-pkg-{salt}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("public"))?;
        std::fs::write(dir.join("plugin.toml"), &manifest)?;
        std::fs::write(dir.join("plugin.wasm"), with_custom_section(&wasm, salt))?;
        // Incompressible padding (xorshift noise) brings the package to
        // about 1 MiB.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(salt);
        let pad: Vec<u8> = (0..256 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        std::fs::write(dir.join("public").join("pad.bin"), pad)?;
        plinth_package::pack_dir(&dir).map_err(|e| anyhow::anyhow!("packing: {e}"))
    };
    let mut timings = InstallTimings {
        package_bytes: 0,
        cold_ms: Vec::new(),
        warm_ms: Vec::new(),
    };
    for salt in 1..=3 {
        let package = make(salt)?;
        timings.package_bytes = package.len();
        timings.cold_ms.push(install_and_wait(addr, &package)?);
        admin(addr, "DELETE", "/api/admin/plugins/bench-hello", &[])?;
    }
    let package = make(1)?;
    for _ in 0..5 {
        timings.warm_ms.push(install_and_wait(addr, &package)?);
        admin(addr, "DELETE", "/api/admin/plugins/bench-hello", &[])?;
    }
    println!(
        "install to first request, {} KiB package: cold {:?} ms, warm {:?} ms",
        timings.package_bytes / 1024,
        timings.cold_ms,
        timings.warm_ms
    );
    Ok(timings)
}

fn install_and_wait(addr: SocketAddr, package: &[u8]) -> Result<f64> {
    let started = Instant::now();
    let status = admin(addr, "POST", "/api/admin/plugins", package)?;
    if status != 201 {
        bail!("installing the bench package answered {status}");
    }
    while status_of(addr, "/p/bench-hello/") != Some(200) {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the installed plugin never answered");
        }
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

/// One admin API call as the bootstrap admin; returns the status.
fn admin(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Result<u16> {
    crate::util::http_call(
        addr,
        method,
        path,
        Some(ADMIN_TOKEN),
        "application/zip",
        body,
    )
    .map(|(status, _)| status)
}

/// Appends a custom section (`plinth-bench` = `salt`) to a component: the
/// code is unchanged, but its hash, and so its compile cache key, differ.
fn with_custom_section(wasm: &[u8], salt: u32) -> Vec<u8> {
    let name = b"plinth-bench";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(&salt.to_le_bytes());
    let mut out = wasm.to_vec();
    out.push(0);
    let mut size = payload.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&payload);
    out
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// The figures of the load whose label starts with `prefix`.
fn rate_of(loads: &[Load], prefix: &str) -> Option<f64> {
    loads
        .iter()
        .find(|l| l.label.starts_with(prefix))
        .map(|l| l.requests_per_sec)
}

fn render(
    loads: &[Load],
    wasmtime: Option<&str>,
    installs: &InstallTimings,
    load_average: &str,
) -> String {
    let native = loads.first().map_or(1.0, |l| l.requests_per_sec);
    let hello = loads.get(1).map_or(0.0, |l| l.requests_per_sec);
    let mut out = String::new();
    out.push_str(BEGIN);
    out.push_str("\n## Plugin routes against native and `wasmtime serve`\n\n");
    out.push_str(&format!(
        "Machine: {}. Load: `wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION} --latency` on loopback, \
         wrk and the server sharing the machine (1-minute load average {load_average} \
         at the end of the run). Host: release build, SQLite, \
         default `runtime` settings (warm instances, pooling allocator).\n\n",
        machine()
    ));
    out.push_str("| target | req/s | p50 | p99 | errors | vs native | hello vs this |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for l in loads {
        out.push_str(&format!(
            "| {} | {:.0} | {} | {} | {} | {:.1}% | {:.2}× |\n",
            l.label,
            l.requests_per_sec,
            l.p50,
            l.p99,
            l.errors,
            100.0 * l.requests_per_sec / native,
            hello / l.requests_per_sec.max(1.0),
        ));
    }
    if let Some(version) = wasmtime {
        out.push_str(&format!("\n`wasmtime serve`: {version}.\n"));
    }
    let checked = [
        (
            "hello plugin, checked caller: bootstrap token",
            "the bootstrap token's super-admin (the bypass)",
        ),
        (
            "hello plugin, checked caller: signed-in session",
            "a `staff` user signed in through `POST /api/auth/login`, holding `hello.greet` by a role grant, its session cookie resolved through the caller cache",
        ),
    ];
    for (prefix, who) in checked {
        if let Some(rate) = rate_of(loads, prefix) {
            out.push_str(&format!(
                "\nPermission check, {who}: the checked route keeps {:.1}% of the public \
                 route's requests per second (goal ≥ 90%).\n",
                100.0 * rate / hello.max(1.0)
            ));
        }
    }
    if let (Some(native), Some(plugin)) = (
        rate_of(loads, "native axum route + reqwest"),
        rate_of(loads, "rates plugin"),
    ) {
        out.push_str(&format!(
            "\nOutbound: the rates plugin route, one outbound call per request to a local \
             upstream (allow-list, address check, in-flight limit, response cap), keeps \
             {:.1}% of the native axum route making the same call with reqwest (goal ≥ 70%). \
             The upstream and the native route run in the bench process, two threads each.\n",
            100.0 * plugin / native.max(1.0)
        ));
    }
    out.push_str(&format!(
        "\n## Install to first served request\n\n\
         `POST /api/admin/plugins` of a {} KiB package (the hello component plus \
         incompressible padding), then `GET` its route until it answers 200, on the same host.\n\n\
         | cache | runs (ms) | median |\n|---|---|---:|\n\
         | cold (component new to the compile cache) | {} | {:.0} ms |\n\
         | warm (compiled code cached) | {} | {:.0} ms |\n",
        installs.package_bytes / 1024,
        installs
            .cold_ms
            .iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        median(&installs.cold_ms),
        installs
            .warm_ms
            .iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        median(&installs.warm_ms),
    ));
    out.push('\n');
    out.push_str(END);
    out
}

/// Replaces the previous routes section of BENCHMARKS.md, keeping the rest.
fn merge_report(existing: &str, report: &str) -> String {
    merge_section(existing, report, BEGIN, END)
}

/// Replaces the section of BENCHMARKS.md between `begin` and `end` (markers
/// included) with `report`, keeping the rest; appends it when absent.
pub(crate) fn merge_section(existing: &str, report: &str, begin: &str, end: &str) -> String {
    match (existing.find(begin), existing.find(end)) {
        (Some(start), Some(stop)) if stop > start => format!(
            "{}{}{}",
            &existing[..start],
            report,
            &existing[stop + end.len()..]
        ),
        _ if existing.trim().is_empty() => format!("# Benchmarks\n\n{report}\n"),
        _ => format!("{}\n\n{report}\n", existing.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_parsed() {
        let text = "Running 10s test @ http://127.0.0.1:1/\n  2 threads and 32 connections\n  Latency Distribution\n     50%  150.00us\n     75%  200.00us\n     99%    1.20ms\n  1234 requests in 10.00s, 1.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 5\nRequests/sec:  12345.67\nTransfer/sec:      1.00MB\n";
        let load = parse_wrk("x", text).expect("parsed");
        assert!((load.requests_per_sec - 12345.67).abs() < 0.01);
        assert_eq!(load.p50, "150.00us");
        assert_eq!(load.p99, "1.20ms");
        assert_eq!(load.errors, 8);
    }

    #[test]
    fn the_report_replaces_its_own_section_only() {
        let old = format!("# Benchmarks\n\nintro\n\n{BEGIN}\nold\n{END}\n\n## Other\nkeep\n");
        let merged = merge_report(&old, &format!("{BEGIN}\nnew\n{END}"));
        assert!(merged.contains("new") && !merged.contains("old"));
        assert!(merged.contains("intro") && merged.contains("keep"));
    }
}
