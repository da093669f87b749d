//! The admin web in a real headless Chromium against the real `plinth
//! serve` binary: signing in and the plugin menu shell, an upgrade whose
//! steps appear live on the plugins page, and a vendor push whose download
//! progress and outcome appear live in the agent panel. Each test leaves
//! screenshots in `target/screenshots/` for a person to look at.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::browser::Browser;
use crate::support::{ServeProcess, built_plugins, package, stage_plugin, write_process_config};
use crate::vendor_process::VendorProcess;

pub(crate) const LOGIN: &str = "admin";
pub(crate) const PASSWORD: &str = "web-test-Passw0rd";
/// The bootstrap token, for setting up users through the admin API.
pub(crate) const TOKEN: &str = "web-test-admin-token";

/// A `plinth serve` process on SQLite in `dir`, its seeded administrator
/// [`LOGIN`] / [`PASSWORD`], with goods 1.0.0 installed when `with_goods`,
/// and `vendor` merged into its config.
pub(crate) async fn serve(dir: &Path, with_goods: bool, vendor: Option<Value>) -> ServeProcess {
    serve_with(dir, with_goods, vendor, json!({})).await
}

pub(crate) async fn serve_with(
    dir: &Path,
    with_goods: bool,
    vendor: Option<Value>,
    sign_in: Value,
) -> ServeProcess {
    let plugins = if with_goods {
        stage_plugin(&dir.join("data"), "goods", "1.0.0");
        json!([{ "name": "goods", "version": "1.0.0" }])
    } else {
        json!([])
    };
    let path = write_web_config(dir, plugins, |config| {
        config["admin"]["sign_in"] = sign_in;
        if let Some(vendor) = vendor {
            config["vendor"] = vendor;
        }
    });
    serve_config(dir, &path, &[]).await
}

/// Writes config.json for a web test in `dir`: SQLite there, the seeded
/// administrator [`LOGIN`] / [`PASSWORD`] and the bootstrap [`TOKEN`],
/// `plugins` (staged by the caller), then whatever `edit` changes.
pub(crate) fn write_web_config(
    dir: &Path,
    plugins: Value,
    edit: impl FnOnce(&mut Value),
) -> PathBuf {
    let path = write_process_config(dir, plugins);
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("config")).expect("config JSON");
    config["admin"] = json!({ "token": TOKEN, "login": LOGIN, "password": PASSWORD });
    edit(&mut config);
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("config");
    path
}

/// A `plinth serve` process on the config at `path`, its data in `dir`,
/// with `env` added to its environment.
pub(crate) async fn serve_config(dir: &Path, path: &Path, env: &[(&str, &str)]) -> ServeProcess {
    ServeProcess::start_with_env(
        Path::new(env!("CARGO_BIN_EXE_plinth")),
        path,
        dir,
        &dir.join("data"),
        env,
    )
    .await
}

/// Types `login` and `password` into the sign-in page and submits.
pub(crate) async fn submit_sign_in(page: &crate::browser::Page<'_>, login: &str, password: &str) {
    page.wait_for(
        "the sign-in page",
        "location.pathname === '/login.html' && document.querySelector('#login-form')",
    )
    .await;
    page.fill("#login", login).await;
    page.fill("#password", password).await;
    page.click("#login-button").await;
}

/// Signs in as the administrator on the sign-in page the shell sent us to.
pub(crate) async fn sign_in(page: &crate::browser::Page<'_>) {
    submit_sign_in(page, LOGIN, PASSWORD).await;
    page.wait_for(
        "the shell",
        "location.pathname === '/' && document.querySelector('#user-name')",
    )
    .await;
}

#[tokio::test]
async fn signing_in_shows_the_goods_menu_and_opens_its_page_in_the_shell() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = serve(dir.path(), true, None).await;
    let browser = Browser::start().await;
    let page = browser.page().await;

    // Asking for the goods page without signing in lands on the sign-in
    // page, which remembers where we were going.
    page.goto(&host.url("/#/p/goods/")).await;
    page.wait_for(
        "the redirect to sign in",
        "location.pathname === '/login.html'",
    )
    .await;
    // Where we were going travels with us (in `next`, or as the fragment
    // the browser keeps across the host's redirect).
    assert_eq!(
        page.eval("decodeURIComponent(location.search + location.hash).includes('/p/goods/')")
            .await,
        json!(true)
    );
    page.screenshot("login").await;

    // A wrong password gets the host's refusal, beside the form, with its
    // request id.
    submit_sign_in(&page, LOGIN, "not-the-password").await;
    let refusal = page.text("#login-error .alert").await.to_lowercase();
    assert!(refusal.contains("wrong login or password"), "{refusal}");
    assert!(
        refusal.contains("request id"),
        "the request id is shown: {refusal}"
    );
    page.screenshot("login-refused").await;

    submit_sign_in(&page, LOGIN, PASSWORD).await;
    // Back where we were going: the goods page inside the shell.
    let menu = page.text("nav a[data-menu='goods/goods']").await;
    assert_eq!(menu, "Goods");
    let inner = page
        .wait_for(
            "the goods page in the frame",
            "(() => { const f = document.getElementById('plugin-frame'); \
             const d = f && f.contentDocument; \
             return d && d.location.pathname === '/p/goods/' && d.body && d.body.innerText; })()",
        )
        .await;
    assert!(
        inner.as_str().unwrap_or_default().contains("goods"),
        "{inner}"
    );
    assert_eq!(page.eval("location.hash").await, json!("#/p/goods/"));
    assert_eq!(
        page.eval("document.querySelector('nav a[aria-current=page]').dataset.menu")
            .await,
        json!("goods/goods"),
        "the open page's menu entry is marked"
    );
    page.screenshot("shell-goods").await;

    // The tree the shell draws: nested by parent, in the host's order,
    // without what the user's codes do not open (nor the children of a
    // hidden entry), and menu ids are per plugin.
    let tree = page
        .eval(
            "import('/js/menus.js').then(({ menuTree }) => { const menus = [\
               { plugin: 'a', id: 'root', title: 'Stock', path: '/p/a/', parent: null, order: 1, permission: null },\
               { plugin: 'a', id: 'items', title: 'Items', path: '/p/a/items', parent: 'root', order: 1, permission: 'a.read' },\
               { plugin: 'a', id: 'moves', title: 'Moves', path: '/p/a/moves', parent: 'root', order: 2, permission: 'a.write' },\
               { plugin: 'a', id: 'admin', title: 'Admin', path: '/p/a/admin', parent: null, order: 2, permission: 'a.admin' },\
               { plugin: 'a', id: 'users', title: 'Users', path: '/p/a/users', parent: 'admin', order: 1, permission: null },\
               { plugin: 'b', id: 'root', title: 'Sales', path: '/p/b/', parent: null, order: 3, permission: null }];\
             const show = (n) => n.title + (n.children.length ? '(' + n.children.map(show).join(',') + ')' : '');\
             return menuTree(menus, (code) => !code || code === 'a.read').map(show).join(','); })",
        )
        .await;
    assert_eq!(tree, json!("Stock(Items),Sales"));

    // The address survives a reload: the same plugin page opens again.
    page.reload().await;
    page.wait_for(
        "the goods page after a reload",
        "(() => { const f = document.getElementById('plugin-frame'); \
         const d = f && f.contentDocument; return d && d.location.pathname === '/p/goods/' && d.readyState === 'complete'; })()",
    )
    .await;

    page.goto(&host.url("/#/")).await;
    page.text(".cards .card .badge").await;
    page.screenshot("overview").await;

    // Usable at phone width: the menu is a drawer behind a labelled button.
    page.size(390, 844).await;
    page.goto(&host.url("/#/plugins")).await;
    page.text("table.plugins tr[data-plugin='goods']").await;
    assert_eq!(
        page.eval("getComputedStyle(document.getElementById('nav-toggle')).display !== 'none'")
            .await,
        json!(true)
    );
    page.screenshot("plugins-390").await;
    page.click("#nav-toggle").await;
    // The drawer slides in over 150 ms.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    page.screenshot("nav-390").await;

    // Signing out ends the session: the shell sends us to sign in again.
    page.size(1280, 800).await;
    page.click("#sign-out").await;
    page.wait_for("the sign-in page", "location.pathname === '/login.html'")
        .await;
    page.goto(&host.url("/#/plugins")).await;
    page.wait_for(
        "the sign-in page again",
        "location.pathname === '/login.html'",
    )
    .await;

    // A `next` pointing off this host is not followed after signing in.
    for evil in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let encoded: String = evil.bytes().map(|b| format!("%{b:02X}")).collect();
        page.goto(&host.url(&format!("/login.html?next={encoded}")))
            .await;
        sign_in(&page).await;
        assert_eq!(
            page.eval("location.origin + location.pathname").await,
            json!(host.url("/")),
            "{evil}"
        );
        page.click("#sign-out").await;
        page.wait_for("signed out", "location.pathname === '/login.html'")
            .await;
    }
    host.stop().await;
}

#[tokio::test]
async fn a_locked_account_and_a_rate_limited_address_get_their_messages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = serve_with(
        dir.path(),
        false,
        None,
        json!({ "max_failures": 2, "lockout_secs": 600, "per_ip_per_minute": 5 }),
    )
    .await;
    let browser = Browser::start().await;
    let page = browser.page().await;
    page.goto(&host.url("/login.html")).await;
    for _ in 0..2 {
        submit_sign_in(&page, LOGIN, "wrong").await;
        page.text("#login-error .alert").await;
    }
    // Locked: even the right password is refused now, and the page says
    // the account may be locked (the same answer as for an unknown user).
    submit_sign_in(&page, LOGIN, PASSWORD).await;
    let locked = page.text("#login-error .alert").await.to_lowercase();
    assert!(locked.contains("locked"), "{locked}");
    assert_eq!(page.eval("location.pathname").await, json!("/login.html"));
    page.screenshot("login-locked").await;
    // Past the per-address limit the host says to wait.
    let mut limited = String::new();
    for _ in 0..6 {
        submit_sign_in(&page, "someone", "wrong").await;
        limited = page.text("#login-error .alert").await.to_lowercase();
        if limited.contains("too many") {
            break;
        }
    }
    assert!(limited.contains("too many sign-in attempts"), "{limited}");
    page.screenshot("login-rate-limited").await;
    host.stop().await;
}

#[tokio::test]
async fn a_viewer_sees_no_control_they_cannot_use_and_is_refused_anyway() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = serve(dir.path(), true, None).await;
    let call = |method: reqwest::Method, path: &'static str, body: Option<Value>| {
        let mut request = reqwest::Client::new()
            .request(method, host.url(path))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.expect("admin API answers");
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
        }
    };
    call(
        reqwest::Method::POST,
        "/api/admin/roles",
        Some(json!({ "name": "viewer" })),
    )
    .await;
    call(
        reqwest::Method::PUT,
        "/api/admin/roles/viewer/grants/plugins.view",
        None,
    )
    .await;
    call(
        reqwest::Method::POST,
        "/api/admin/users",
        Some(json!({ "login": "vera", "password": "Vera-password-1", "roles": ["viewer"] })),
    )
    .await;

    let browser = Browser::start().await;
    let page = browser.fresh_context_page().await;
    page.goto(&host.url("/#/plugins")).await;
    submit_sign_in(&page, "vera", "Vera-password-1").await;
    page.text("table.plugins tr[data-plugin='goods'] td.version")
        .await;
    assert_eq!(page.text("#user-name").await, "vera");
    let hidden = page
        .eval(
            "({ install: !!document.querySelector('#install-form'), \
               buttons: document.querySelectorAll('button[data-action]').length, \
               agent: [...document.querySelectorAll('nav a')].some(a => a.textContent === 'Upgrade agent'), \
               goods: !!document.querySelector(\"nav a[data-menu='goods/goods']\") })",
        )
        .await;
    assert_eq!(
        hidden,
        json!({ "install": false, "buttons": 0, "agent": false, "goods": false }),
        "no install form, no operation buttons, no agent page, no goods menu (goods.view not granted)"
    );
    assert_eq!(
        page.eval("/\\bnull\\b|undefined/.test(document.querySelector('.page').innerText)")
            .await,
        json!(false),
        "no stray null/undefined on the page"
    );
    page.screenshot("plugins-viewer").await;
    // Called anyway from the page, the host refuses.
    let status = page
        .eval("fetch('/api/admin/plugins/goods', { method: 'DELETE' }).then(r => r.status)")
        .await;
    assert_eq!(status, json!(403));

    // Signed out everywhere by an administrator: the next page load asks
    // to sign in again.
    call(
        reqwest::Method::POST,
        "/api/admin/users/vera/sign-out",
        None,
    )
    .await;
    page.reload().await;
    page.wait_for("the sign-in page", "location.pathname === '/login.html'")
        .await;
    host.stop().await;
}

#[tokio::test]
async fn an_upload_shows_each_install_step_live_then_the_new_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = serve(dir.path(), true, None).await;
    let browser = Browser::start().await;
    let page = browser.page().await;
    page.goto(&host.url("/#/plugins")).await;
    sign_in(&page).await;
    let version = page
        .text("table.plugins tr[data-plugin='goods'] td.version")
        .await;
    assert_eq!(version, "1.0.0");
    page.wait_for(
        "the live feed",
        "document.getElementById('live-state').textContent === 'live'",
    )
    .await;
    // Marks this document: if the page reloaded, the mark would be gone.
    page.eval("window.__same_document = true").await;

    // Not a package: the host's refusal shows beside the form, with its
    // request id, and nothing changed.
    let not_a_zip = crate::support::repo_root().join("plugins/goods/plugin.toml");
    page.choose_file("#package-file", &not_a_zip).await;
    page.click("#install-button").await;
    let refusal = page.text("#install-error .alert").await;
    assert!(refusal.contains("request id"), "{refusal}");
    assert!(
        page.text("#outcome").await.contains("nothing changed"),
        "the outcome says nothing changed"
    );
    page.screenshot("plugins-install-refused").await;

    let zip: PathBuf = built_plugins().join("goods-1.1.0.zip");
    page.choose_file("#package-file", &zip).await;
    page.click("#install-button").await;
    let outcome = page.text("#outcome").await;
    assert!(outcome.contains("1.0.0 → 1.1.0"), "{outcome}");
    let steps = page
        .wait_for(
            "every step of the upgrade",
            "(() => { const s = [...document.querySelectorAll('#steps li')].map(li => li.dataset.step); \
             return s.includes('done') && s; })()",
        )
        .await;
    assert_eq!(
        steps,
        json!([
            "started",
            "unpacked",
            "compiled",
            "placed",
            "committed",
            "swapped",
            "done"
        ]),
        "the journal's steps, in order, as the host wrote them"
    );
    page.wait_for(
        "the new version in the list",
        "(() => { const r = document.querySelector(\"table.plugins tr[data-plugin='goods']\"); \
         return r && r.querySelector('td.version').textContent === '1.1.0' \
         && r.querySelector('td.previous').textContent === '1.0.0'; })()",
    )
    .await;
    assert_eq!(
        page.eval("window.__same_document").await,
        json!(true),
        "no reload"
    );
    let history = page.text("ul.history li.op").await;
    assert!(history.contains("upgrade 1.0.0 → 1.1.0"), "{history}");
    page.screenshot_full("plugins-upgrade").await;

    // Remove asks first and says the data is kept.
    page.click("tr[data-plugin='goods'] button[data-action='remove']")
        .await;
    let question = page.text("dialog").await;
    assert!(question.contains("data are kept"), "{question}");
    page.screenshot("plugins-remove-confirm").await;
    page.click("dialog button.secondary").await;
    page.wait_for("the dialog to close", "!document.querySelector('dialog')")
        .await;

    // Roll back, confirmed: steps live again, then 1.0.0 serves.
    page.click("tr[data-plugin='goods'] button[data-action='rollback']")
        .await;
    let question = page.text("dialog").await;
    assert!(question.contains("data is kept"), "{question}");
    page.click("dialog button[value='ok']").await;
    page.wait_for(
        "the rollback's steps and outcome",
        "(() => { const s = [...document.querySelectorAll('#steps li')].map(li => li.dataset.step); \
         const o = document.getElementById('outcome'); \
         return s[0] === 'started' && s.includes('done') && o && o.textContent.includes('done'); })()",
    )
    .await;
    page.wait_for(
        "1.0.0 back in the list",
        "(() => { const r = document.querySelector(\"table.plugins tr[data-plugin='goods']\"); \
         return r && r.querySelector('td.version').textContent === '1.0.0'; })()",
    )
    .await;
    assert_eq!(
        page.eval("window.__same_document").await,
        json!(true),
        "no reload"
    );

    // Disabled, it is still described in full, and its menu leaves the
    // navigation; enabled again, the menu returns.
    page.click("tr[data-plugin='goods'] button[data-action='disable']")
        .await;
    page.click("dialog button[value='ok']").await;
    page.wait_for(
        "goods disabled, its menu gone",
        "(() => { const r = document.querySelector(\"table.plugins tr[data-plugin='goods']\"); \
         return r && r.innerText.includes('disabled') && r.innerText.includes('Goods') \
         && r.innerText.includes('goods.items.read') && !document.querySelector(\"nav a[data-menu='goods/goods']\"); })()",
    )
    .await;
    page.screenshot_full("plugins-disabled").await;
    page.click("tr[data-plugin='goods'] button[data-action='enable']")
        .await;
    page.click("dialog button[value='ok']").await;
    page.text("nav a[data-menu='goods/goods']").await;
    assert_eq!(
        page.eval("window.__same_document").await,
        json!(true),
        "no reload"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_vendor_push_shows_download_progress_and_success_in_the_agent_panel() {
    let mut vendor = VendorProcess::new();
    vendor.serve().await;
    let customer_token = vendor.add_customer("acme");
    vendor.publish("goods-1.0.0.zip", &package("goods-1.0.0"));
    vendor.ok(&["assign", "acme", "goods", "^1"]);

    let dir = tempfile::tempdir().expect("temp dir");
    let host = serve(
        dir.path(),
        false,
        Some(json!({
            "endpoint": vendor.endpoint(),
            "customer": "acme",
            "customer_token": customer_token,
            "public_key": vendor.public_key,
            "reconnect_initial_ms": 50,
            "reconnect_max_ms": 400,
        })),
    )
    .await;
    let browser = Browser::start().await;
    let page = browser.page().await;
    page.goto(&host.url("/#/agent")).await;
    sign_in(&page).await;
    page.wait_for(
        "the agent to connect",
        "document.querySelector('#agent-connection') && document.querySelector('#agent-connection').innerText.includes('Connected')",
    )
    .await;
    let vendor_shown = page.text("#agent-vendor").await;
    assert_eq!(vendor_shown, vendor.endpoint());
    page.wait_for(
        "the live feed",
        "document.getElementById('live-state').textContent === 'live'",
    )
    .await;
    page.text("#agent .empty").await;
    page.screenshot("agent-idle").await;
    // Records every package state the panel shows, as it redraws.
    page.eval(
        "window.__seen = []; new MutationObserver(() => { \
           for (const r of document.querySelectorAll('#agent tr[data-package]')) { \
             const s = r.querySelector('.step-cell .badge').textContent + ' ' + r.querySelector('progress').value; \
             if (window.__seen[window.__seen.length - 1] !== s) window.__seen.push(s); } \
         }).observe(document.getElementById('agent'), { childList: true, subtree: true })",
    )
    .await;
    page.eval("window.__same_document = true").await;

    vendor.ok(&["push", "acme"]);
    page.wait_for(
        "the offer to succeed",
        "document.querySelector('#agent-offer .section-head .badge') && \
         document.querySelector('#agent-offer .section-head .badge').textContent === 'success'",
    )
    .await;
    let seen = page.eval("window.__seen").await;
    let seen: Vec<String> = serde_json::from_value(seen).expect("states");
    assert!(
        seen.iter().any(|s| s.starts_with("downloading")),
        "download progress was shown: {seen:?}"
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("success 100"),
        "{seen:?}"
    );
    let order: Vec<&str> =
        seen.iter()
            .filter_map(|s| s.split(' ').next())
            .fold(Vec::new(), |mut acc, s| {
                if acc.last() != Some(&s) {
                    acc.push(s);
                }
                acc
            });
    let position = |step: &str| order.iter().position(|s| *s == step);
    assert!(
        position("downloading") < position("installing")
            && position("installing") < position("success"),
        "steps in order: {order:?}"
    );
    assert_eq!(
        page.eval("window.__same_document").await,
        json!(true),
        "no reload"
    );
    page.screenshot("agent-push").await;
    host.stop().await;
}
