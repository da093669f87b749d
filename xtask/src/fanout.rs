//! `cargo xtask bench-fanout [N…]`: one vendor server holding N concurrent
//! agent connections, the memory it takes and the time to fan one push out
//! to all of them. Run by `cargo xtask bench` for N = 1,000 and 10,000.
//!
//! The agents are simulated by a load client in this process: each is a
//! real websocket to the release-built `plinth-vendor serve` on loopback,
//! authenticated as its own customer, saying `hello` and waiting for its
//! `offer`. Every customer is assigned `hello ^0.1`; one `plinth-vendor
//! push` (all customers) then signs N deployments, and the server delivers
//! each to its customer's socket. Fan-out time runs from the start of the
//! push command to the last offer received. The vendor's memory is its
//! resident set (`VmRSS`) before and with the agents connected.
//!
//! Both processes stay under the machine's open-file limit (20,000 here) on
//! their own: N sockets each side.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{SinkExt as _, StreamExt as _};
use plinth_package::protocol::{AgentMessage, PROTOCOL_VERSION, VendorMessage};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _};

use crate::bench::{machine, merge_section};
use crate::build_plugins;
use crate::util::{cargo, target_dir, workspace_root};
use crate::vendor_cli::{self, VendorCli};

/// Customers added per `customer add` call (keeps argument lists short).
const ADD_BATCH: usize = 2_000;
/// Connection handshakes in flight at once.
const CONNECTING_AT_ONCE: usize = 256;
const LIMIT: Duration = Duration::from_secs(300);

/// One run's figures.
#[derive(Debug, Clone)]
pub struct Fanout {
    pub agents: usize,
    pub connect_secs: f64,
    pub rss_idle_kib: u64,
    pub rss_connected_kib: u64,
    pub push_cmd_secs: f64,
    pub fanout_p50_ms: f64,
    pub fanout_max_ms: f64,
}

pub fn run(args: &[String]) -> Result<()> {
    let sizes: Vec<usize> = if args.is_empty() {
        vec![1_000, 10_000]
    } else {
        args.iter()
            .map(|a| {
                a.parse()
                    .with_context(|| format!("`{a}` is not a number of agents"))
            })
            .collect::<Result<_>>()?
    };
    let results = measure(&sizes)?;
    let report = report(&results);
    println!("{report}");
    let path = workspace_root().join("docs").join("BENCHMARKS.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, merge_section(&existing, &report, BEGIN, END))
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

const BEGIN: &str = "<!-- BEGIN fanout (cargo xtask bench-fanout) -->";
const END: &str = "<!-- END fanout -->";

/// The BENCHMARKS.md section, markers included.
fn report(results: &[Fanout]) -> String {
    let mut out = format!(
        "{BEGIN}\n## Vendor push fan-out\n\nMachine: {}. One release-built `plinth-vendor serve` (SQLite state) on loopback; the load client (same machine, same cores) opens one websocket per customer, each a real agent handshake (`hello`, `welcome`). Every customer is assigned `hello ^0.1`; one `plinth-vendor push` signs a deployment per customer and the server's poller delivers each to its socket. Times run from the start of the `push` command.\n\n{HEADER}\n",
        machine()
    );
    for fanout in results {
        out.push_str(&row(fanout));
        out.push('\n');
    }
    out.push_str(END);
    out
}

/// Builds what it needs and measures each size in turn.
pub fn measure(sizes: &[usize]) -> Result<Vec<Fanout>> {
    let root = workspace_root();
    build_plugins::run(&[])?;
    let status = cargo(&root)
        .args(["build", "--release", "-p", "plinth-vendor"])
        .status()?;
    if !status.success() {
        bail!("building plinth-vendor failed ({status})");
    }
    let target = target_dir(&root);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the load client's runtime")?;
    let mut results = Vec::new();
    for &agents in sizes {
        let (vendor, _public) = VendorCli::fresh(
            vendor_cli::binary(&target, "release"),
            target.join("bench-fanout"),
        )?;
        let zip = target.join("plugins").join("hello-0.1.0.zip");
        vendor.run(&["publish", &zip.display().to_string()])?;
        let names: Vec<String> = (1..=agents).map(|i| format!("agent-{i:05}")).collect();
        let mut tokens = Vec::with_capacity(agents);
        for batch in names.chunks(ADD_BATCH) {
            let mut args = vec!["customer", "add", "--assign", "hello=^0.1"];
            args.extend(batch.iter().map(String::as_str));
            let out = vendor.run(&args)?;
            tokens.extend(
                out.lines()
                    .filter_map(|l| l.split_once(' ').map(|(_, t)| t.trim().to_owned())),
            );
        }
        if tokens.len() != agents {
            bail!("got {} tokens for {agents} customers", tokens.len());
        }
        let addr = free_port()?;
        let server = vendor.serve(addr)?;
        let pid = server.0.id();
        std::thread::sleep(Duration::from_millis(500));
        let rss_idle_kib = rss_kib(pid)?;
        let fanout = runtime.block_on(drive(&vendor, addr, tokens, pid, rss_idle_kib))?;
        println!("{HEADER}\n{}", row(&fanout));
        results.push(fanout);
        drop(server);
    }
    Ok(results)
}

async fn drive(
    vendor: &VendorCli,
    addr: SocketAddr,
    tokens: Vec<String>,
    pid: u32,
    rss_idle_kib: u64,
) -> Result<Fanout> {
    let agents = tokens.len();
    let url = format!("ws://{addr}/api/agent");
    let gate = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let (connected_tx, mut connected_rx) = tokio::sync::mpsc::channel::<Result<()>>(agents);
    let (offer_tx, mut offer_rx) = tokio::sync::mpsc::channel::<Instant>(agents);
    let started = Instant::now();
    for token in tokens {
        let (url, gate, connected_tx, offer_tx) = (
            url.clone(),
            gate.clone(),
            connected_tx.clone(),
            offer_tx.clone(),
        );
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let socket = connect(&url, &token).await;
            drop(permit);
            let mut ws = match socket {
                Ok(ws) => {
                    let _ = connected_tx.send(Ok(())).await;
                    ws
                }
                Err(e) => {
                    let _ = connected_tx.send(Err(e)).await;
                    return;
                }
            };
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message
                    && let Ok(VendorMessage::Offer { .. }) = serde_json::from_str(text.as_str())
                {
                    let _ = offer_tx.send(Instant::now()).await;
                }
            }
        });
    }
    drop(connected_tx);
    for i in 0..agents {
        match tokio::time::timeout(LIMIT, connected_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => return Err(e.context(format!("agent {i} failed to connect"))),
            _ => bail!("only {i} of {agents} agents connected within {LIMIT:?}"),
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected_kib = rss_kib(pid)?;

    let push_started = Instant::now();
    let mut push = vendor.command();
    push.arg("push").stdout(std::process::Stdio::null());
    let status = tokio::task::spawn_blocking(move || push.status())
        .await
        .context("push task")??;
    let push_cmd_secs = push_started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("plinth-vendor push failed ({status})");
    }
    let mut arrivals = Vec::with_capacity(agents);
    for i in 0..agents {
        match tokio::time::timeout(LIMIT, offer_rx.recv()).await {
            Ok(Some(at)) => arrivals.push(at.duration_since(push_started).as_secs_f64() * 1e3),
            _ => bail!("only {i} of {agents} agents received the push within {LIMIT:?}"),
        }
    }
    arrivals.sort_by(f64::total_cmp);
    Ok(Fanout {
        agents,
        connect_secs,
        rss_idle_kib,
        rss_connected_kib,
        push_cmd_secs,
        fanout_p50_ms: arrivals[agents / 2],
        fanout_max_ms: arrivals[agents - 1],
    })
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects as one agent: bearer token, `hello`, wait for `welcome`.
async fn connect(url: &str, token: &str) -> Result<Socket> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(60),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .context("websocket handshake timed out")??;
    let hello = AgentMessage::Hello {
        protocol: PROTOCOL_VERSION,
        agent_version: "bench".into(),
        installed: Vec::new(),
        last_deployment_id: None,
    };
    ws.send(Message::text(hello.to_json())).await?;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .context("no welcome within 60 s")?;
        match message {
            Some(Ok(Message::Text(text))) => {
                return match serde_json::from_str(text.as_str())? {
                    VendorMessage::Welcome { .. } => Ok(ws),
                    other => bail!("expected welcome, got {other:?}"),
                };
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("the vendor closed the connection before welcome"),
        }
    }
}

fn free_port() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Resident memory of a process, KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
}

/// One Markdown table row.
pub fn row(f: &Fanout) -> String {
    let per_agent = (f.rss_connected_kib.saturating_sub(f.rss_idle_kib)) as f64 / f.agents as f64;
    format!(
        "| {} | {:.1} s | {:.1} MiB | {:.1} MiB | {:.1} KiB | {:.2} s | {:.0} ms | {:.0} ms |",
        f.agents,
        f.connect_secs,
        f.rss_idle_kib as f64 / 1024.0,
        f.rss_connected_kib as f64 / 1024.0,
        per_agent,
        f.push_cmd_secs,
        f.fanout_p50_ms,
        f.fanout_max_ms
    )
}

/// The table header matching [`row`].
pub const HEADER: &str = "| agents | all connected after | vendor RSS idle | RSS connected | per agent | `push` command | offer p50 | last offer |\n|---:|---:|---:|---:|---:|---:|---:|---:|";
