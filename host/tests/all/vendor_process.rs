//! The real vendor server, `plinth-vendor`, run as a process on loopback
//! with its own SQLite state and package store in a temp dir; and a TCP
//! proxy that can cut a package download mid-body, to prove the agent
//! resumes it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The `plinth-vendor` binary: `$PLINTH_VENDOR_BIN`, or beside this test
/// binary's `deps/` folder, where `cargo test --workspace` and
/// `cargo xtask test` build it.
fn vendor_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("PLINTH_VENDOR_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("test exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("plinth-vendor");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p plinth-vendor` (`cargo xtask test` does it for you)",
        bin.display()
    );
    bin
}

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

pub struct VendorProcess {
    pub dir: tempfile::TempDir,
    pub public_key: String,
    pub addr: SocketAddr,
    server: Option<Child>,
}

impl VendorProcess {
    /// A vendor with a fresh key, state and store; not serving yet.
    pub fn new() -> VendorProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut vendor = VendorProcess {
            dir,
            public_key: String::new(),
            addr: free_addr(),
            server: None,
        };
        let key = vendor.dir.path().join("vendor.key");
        let out = vendor.ok(&["key", "generate", "--out", key.to_str().expect("utf-8")]);
        vendor.public_key = out
            .split_whitespace()
            .find(|w| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit()))
            .unwrap_or_else(|| panic!("no public key in {out:?}"))
            .to_owned();
        vendor
    }

    fn command(&self) -> Command {
        let dir = self.dir.path();
        let mut command = Command::new(vendor_bin());
        command
            .env(
                "PLINTH_VENDOR_DB",
                format!("sqlite://{}?mode=rwc", dir.join("vendor.db").display()),
            )
            .env("PLINTH_VENDOR_STORE", dir.join("store"))
            .env("PLINTH_VENDOR_KEY_FILE", dir.join("vendor.key"))
            .env_remove("PLINTH_VENDOR_KEY")
            .env_remove("PLINTH_VENDOR_BIND");
        command
    }

    /// Runs a CLI command to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running plinth-vendor {args:?}: {e}"))
    }

    /// Runs a CLI command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "plinth-vendor {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Adds a customer and returns its token.
    pub fn add_customer(&self, name: &str) -> String {
        let out = self.ok(&["customer", "add", name]);
        out.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no token for {name} in {out:?}"))
            .trim()
            .to_owned()
    }

    /// Publishes package bytes (written to a file first).
    pub fn publish(&self, file_name: &str, bytes: &[u8]) -> String {
        let path = self.dir.path().join(file_name);
        std::fs::write(&path, bytes).expect("write package");
        self.ok(&["publish", path.to_str().expect("utf-8")])
    }

    /// Starts `serve` and waits until it answers `/healthz`.
    pub async fn serve(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("serve.log")).expect("log file");
        let child = self
            .command()
            .args(["serve", "--bind", &self.addr.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn plinth-vendor serve");
        self.server = Some(child);
        let client = reqwest::Client::new();
        let url = format!("http://{}/healthz", self.addr);
        for _ in 0..200 {
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("plinth-vendor serve did not come up: {}", self.log());
    }

    /// Kills the server process (as a crash or a restart would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    pub fn endpoint(&self) -> String {
        format!("ws://{}/api/agent", self.addr)
    }

    /// `status <customer> --json`.
    pub fn status(&self, customer: &str) -> serde_json::Value {
        let out = self.ok(&["status", customer, "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status JSON: {e}: {out}"))
    }
}

impl Drop for VendorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback TCP proxy in front of the vendor. It forwards everything,
/// except that the first package download (`GET /packages/…`) is cut
/// after `cut_after` bytes of response. It records the request head of
/// every download so a test can see the `Range` the agent sent.
pub struct CuttingProxy {
    pub addr: SocketAddr,
    pub downloads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttingProxy {
    pub async fn start(upstream: SocketAddr, cut_after: usize) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let downloads = Arc::new(Mutex::new(Vec::new()));
        let cut_done = Arc::new(Mutex::new(false));
        let seen = downloads.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let seen = seen.clone();
                let cut_done = cut_done.clone();
                tokio::spawn(async move {
                    let _ = relay(client, upstream, cut_after, seen, cut_done).await;
                });
            }
        });
        CuttingProxy {
            addr,
            downloads,
            task,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("ws://{}/api/agent", self.addr)
    }

    pub fn downloads(&self) -> Vec<String> {
        self.downloads.lock().expect("lock").clone()
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    cut_after: usize,
    seen: Arc<Mutex<Vec<String>>>,
    cut_done: Arc<Mutex<bool>>,
) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    let mut head = vec![0u8; 8192];
    let n = client.read(&mut head).await?;
    head.truncate(n);
    let text = String::from_utf8_lossy(&head).into_owned();
    server.write_all(&head).await?;
    if !text.starts_with("GET /packages/") {
        tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        return Ok(());
    }
    seen.lock().expect("lock").push(text);
    let cut = {
        let mut done = cut_done.lock().expect("lock");
        let cut = !*done;
        *done = true;
        cut
    };
    if !cut {
        tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        return Ok(());
    }
    let mut sent = 0;
    let mut buf = vec![0u8; 4096];
    while sent < cut_after {
        let n = server.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let n = n.min(cut_after - sent);
        client.write_all(&buf[..n]).await?;
        sent += n;
    }
    client.flush().await?;
    // Dropping both streams ends the download mid-body.
    Ok(())
}
