//! A headless Chromium for the admin web tests, driven over the Chrome
//! DevTools Protocol with the websocket client the host already links (so
//! the browser tests add no crate to the build).
//!
//! It runs Debian's `/usr/bin/chromium` (or `$PLINTH_CHROMIUM`) with a
//! fresh `--user-data-dir`, never a downloaded browser. [`Browser`] owns
//! the process; [`Page`] is one tab, optionally in its own browser context
//! (its own cookies and storage, like a second person's browser).

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

pub struct Browser {
    child: tokio::process::Child,
    _profile: tempfile::TempDir,
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    next_id: Arc<AtomicU64>,
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("PLINTH_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    assert!(
        path.is_file(),
        "{} is missing: install Debian's chromium (`apt-get install -y chromium chromium-driver`; .ci/run does)",
        path.display()
    );
    path
}

/// Where the admin web tests leave their screenshots for a person to look at.
pub fn screenshot_dir() -> PathBuf {
    let dir = crate::support::repo_root()
        .join("target")
        .join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

impl Browser {
    /// Starts headless Chromium with a fresh profile and connects to it.
    pub async fn start() -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = tokio::process::Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        // Chromium writes its port and browser path here once it listens.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let url = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break format!("ws://127.0.0.1:{port}{path}");
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "chromium did not open its debugging port"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (socket, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("connect to chromium");
        let (mut sink, mut stream) = socket.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = out_rx.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let answers = pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(id) = value["id"].as_u64()
                    && let Some(tx) = answers.lock().await.remove(&id)
                {
                    let _ = tx.send(value);
                }
            }
        });
        Browser {
            child,
            _profile: profile,
            out,
            pending,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Sends one CDP command (to a tab when `session` is set) and returns
    /// its result, panicking with Chromium's error if it failed.
    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().await.insert(id, tx);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.out
            .send(message.to_string())
            .expect("chromium connection");
        let answer = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .unwrap_or_else(|_| panic!("chromium did not answer {method}"))
            .expect("answer");
        if let Some(error) = answer.get("error") {
            panic!("chromium refused {method}: {error}");
        }
        answer["result"].clone()
    }

    /// A new tab in the default context.
    pub async fn page(&self) -> Page<'_> {
        self.page_in(None).await
    }

    /// A new tab in a fresh context: no cookies or storage shared with
    /// the other tabs.
    pub async fn fresh_context_page(&self) -> Page<'_> {
        let context = self
            .call(None, "Target.createBrowserContext", json!({}))
            .await;
        let id = context["browserContextId"]
            .as_str()
            .expect("context id")
            .to_owned();
        self.page_in(Some(id)).await
    }

    async fn page_in(&self, context: Option<String>) -> Page<'_> {
        let mut params = json!({ "url": "about:blank" });
        if let Some(context) = &context {
            params["browserContextId"] = json!(context);
        }
        let target = self.call(None, "Target.createTarget", params).await;
        let target_id = target["targetId"].as_str().expect("target id").to_owned();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await;
        let session = attached["sessionId"]
            .as_str()
            .expect("session id")
            .to_owned();
        let page = Page {
            browser: self,
            session,
        };
        page.cmd("Page.enable", json!({})).await;
        page.cmd("Runtime.enable", json!({})).await;
        page.size(1280, 800).await;
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// One tab.
pub struct Page<'b> {
    browser: &'b Browser,
    session: String,
}

impl Page<'_> {
    pub async fn cmd(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params).await
    }

    /// Sets the viewport, as a window of that size would.
    pub async fn size(&self, width: u32, height: u32) {
        self.cmd(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600 }),
        )
        .await;
    }

    /// Opens `url` and waits until the document has loaded.
    pub async fn goto(&self, url: &str) {
        self.cmd("Page.navigate", json!({ "url": url })).await;
        self.wait_loaded().await;
    }

    /// Reloads the page and waits until the new document has loaded.
    /// `Page.reload` answers before the new document replaces the old one,
    /// whose `readyState` is already `complete`: a mark left on the old
    /// window tells them apart.
    pub async fn reload(&self) {
        self.eval("window.__plinthBeforeReload = true").await;
        self.cmd("Page.reload", json!({})).await;
        self.wait_for(
            "the reloaded page to load",
            "window.__plinthBeforeReload === undefined && document.readyState === 'complete'",
        )
        .await;
    }

    async fn wait_loaded(&self) {
        self.wait_for("the page to load", "document.readyState === 'complete'")
            .await;
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its
    /// value; panics with the page's exception if it threw.
    pub async fn eval(&self, expression: &str) -> Value {
        let result = self
            .cmd(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("the page threw evaluating {expression}: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Like [`Page::eval`] but `None` while the page is navigating.
    async fn try_eval(&self, expression: &str) -> Option<Value> {
        let id = self.browser.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.browser.pending.lock().await.insert(id, tx);
        let message = json!({ "id": id, "sessionId": self.session, "method": "Runtime.evaluate",
            "params": { "expression": expression, "returnByValue": true, "awaitPromise": true } });
        self.browser.out.send(message.to_string()).ok()?;
        let answer = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .ok()?
            .ok()?;
        if answer.get("error").is_some() || answer["result"].get("exceptionDetails").is_some() {
            return None;
        }
        Some(answer["result"]["result"]["value"].clone())
    }

    /// Waits (at most 30 s) until `condition` is truthy in the page.
    pub async fn wait_for(&self, what: &str, condition: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(value) = self.try_eval(condition).await
                && !matches!(value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0)
            {
                return value;
            }
            if tokio::time::Instant::now() > deadline {
                let url = self.try_eval("location.href").await;
                let text = self
                    .try_eval("document.body && document.body.innerText.slice(0, 1500)")
                    .await;
                panic!(
                    "timed out waiting for {what} ({condition}) at {url:?}; the page shows: {text:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of the first element `selector` matches, waiting for it.
    pub async fn text(&self, selector: &str) -> String {
        let q = serde_json::to_string(selector).expect("json");
        self.wait_for(
            &format!("{selector} to appear"),
            &format!("document.querySelector({q}) && document.querySelector({q}).innerText"),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Types into a field as a user would: focus, then insert the text.
    pub async fn fill(&self, selector: &str, value: &str) {
        let q = serde_json::to_string(selector).expect("json");
        self.wait_for(
            &format!("{selector} to appear"),
            &format!("document.querySelector({q})"),
        )
        .await;
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({q}); el.focus(); el.select && el.select(); }})()"
        ))
        .await;
        self.cmd("Input.insertText", json!({ "text": value })).await;
    }

    /// Clicks the first element `selector` matches, waiting for it.
    pub async fn click(&self, selector: &str) {
        let q = serde_json::to_string(selector).expect("json");
        self.wait_for(
            &format!("{selector} to be clickable"),
            &format!("document.querySelector({q}) && !document.querySelector({q}).disabled"),
        )
        .await;
        self.eval(&format!("document.querySelector({q}).click()"))
            .await;
    }

    /// Puts `file` into the file input `selector`.
    pub async fn choose_file(&self, selector: &str, file: &Path) {
        let document = self.cmd("DOM.getDocument", json!({ "depth": 0 })).await;
        let root = document["root"]["nodeId"].clone();
        let node = self
            .cmd(
                "DOM.querySelector",
                json!({ "nodeId": root, "selector": selector }),
            )
            .await;
        self.cmd(
            "DOM.setFileInputFiles",
            json!({ "nodeId": node["nodeId"], "files": [file.display().to_string()] }),
        )
        .await;
    }

    /// Saves a PNG of the viewport as `target/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        self.save_png(name, json!({ "format": "png" })).await
    }

    /// Saves a PNG of the whole page, below the fold included.
    pub async fn screenshot_full(&self, name: &str) -> PathBuf {
        self.save_png(
            name,
            json!({ "format": "png", "captureBeyondViewport": true }),
        )
        .await
    }

    async fn save_png(&self, name: &str, params: Value) -> PathBuf {
        let shot = self.cmd("Page.captureScreenshot", params).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("png data"))
            .expect("base64 png");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }
}
