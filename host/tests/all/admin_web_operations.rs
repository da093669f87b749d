//! The admin web's operations pages in a real headless Chromium against
//! the real `plinth serve` binary: the tasks page shows goods' task, run
//! now adds a run row with its outcome without a reload, and pause shows
//! and survives a reload; a failing subscriber's dead letter is listed and
//! replay empties the list; the settings form saves a value and shows a
//! wrong one's refusal, the host's message and request id, beside its
//! field; and the shell at 390 px wide folds its menu into a drawer.
//! Screenshots go to `target/screenshots/`.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::admin_web::{TOKEN, serve_config, sign_in, write_web_config};
use crate::browser::{Browser, Page};
use crate::support::{ServeProcess, client_with_token, eventually, stage_plugin};

const TASK: &str = "goods/low-stock-report";

fn quoted(selector: &str) -> String {
    serde_json::to_string(selector).expect("json")
}

/// Opens `route` of the shell, signing in on the way.
async fn open_signed_in(page: &Page<'_>, host: &ServeProcess, route: &str) {
    page.goto(&host.url(&format!("/#{route}"))).await;
    sign_in(page).await;
    page.wait_for(
        &format!("the shell at {route}"),
        &format!("location.hash === {}", quoted(&format!("#{route}"))),
    )
    .await;
}

#[tokio::test]
async fn run_now_adds_a_run_without_reload_and_pause_survives_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    stage_plugin(&dir.path().join("data"), "goods", "1.0.0");
    let path = write_web_config(
        dir.path(),
        json!([{ "name": "goods", "version": "1.0.0" }]),
        |_| {},
    );
    let host = serve_config(dir.path(), &path, &[]).await;
    let browser = Browser::start().await;
    let page = browser.page().await;
    page.size(1280, 800).await;
    open_signed_in(&page, &host, "/tasks").await;

    let row = format!("tr[data-task='{TASK}']");
    let title = page.text(&format!("{row} th .name")).await;
    assert_eq!(title, "Report items with low stock");
    assert!(
        page.text(&format!("{row} .last-outcome"))
            .await
            .contains("never run"),
        "no run yet"
    );
    page.eval("window.notReloaded = true").await;

    page.click(&format!("{row} button[data-action=run]")).await;
    let history = format!("[data-history='{TASK}']");
    let outcome = page
        .wait_for(
            "the run's row with its outcome",
            &format!(
                "(() => {{ const r = document.querySelector({}); return r && r.dataset.outcome !== 'running' && r.dataset.outcome; }})()",
                quoted(&format!("{history} tr[data-run]"))
            ),
        )
        .await;
    assert_eq!(outcome, json!("ok"), "goods' report runs fine");
    page.wait_for(
        "the last outcome in the task row",
        &format!(
            "document.querySelector({}).innerText.includes('ok')",
            quoted(&format!("{row} .last-outcome"))
        ),
    )
    .await;
    assert_eq!(
        page.eval("window.notReloaded === true").await,
        json!(true),
        "the page was not reloaded"
    );
    let host_cell = page
        .text(&format!("{history} tr[data-run] td[data-label=Host]"))
        .await;
    assert!(!host_cell.is_empty() && host_cell != "—", "{host_cell}");
    page.screenshot("tasks").await;

    page.click(&format!("{row} button[data-action=pause]"))
        .await;
    page.wait_for(
        "the paused state",
        &format!(
            "document.querySelector({}).innerText === 'paused' && document.querySelector({}).dataset.paused === 'true'",
            quoted(&format!("{row} .task-state")),
            quoted(&row)
        ),
    )
    .await;
    page.reload().await;
    page.wait_for(
        "the paused state after a reload",
        &format!(
            "(() => {{ const r = document.querySelector({}); return r && r.dataset.paused === 'true' && r.querySelector('button[data-action=resume]'); }})()",
            quoted(&row)
        ),
    )
    .await;
    assert_eq!(
        page.eval("window.notReloaded === undefined").await,
        json!(true),
        "this time it was"
    );
    page.screenshot("tasks-paused").await;

    // At phone width the menu is a drawer the toggle opens.
    page.size(390, 844).await;
    page.wait_for(
        "the menu folded away",
        "getComputedStyle(document.getElementById('nav-toggle')).display !== 'none' \
         && document.getElementById('nav').getBoundingClientRect().right <= 0",
    )
    .await;
    page.screenshot("phone-tasks").await;
    page.click("#nav-toggle").await;
    page.wait_for(
        "the drawer open",
        "document.getElementById('nav').getBoundingClientRect().left >= 0 \
         && document.querySelector('nav a[href=\"#/tasks\"]').getBoundingClientRect().width > 0",
    )
    .await;
    page.screenshot("phone-nav").await;
    host.stop().await;
}

/// The dead letters the host lists.
async fn dead_letters(client: &reqwest::Client, host: &ServeProcess) -> Vec<Value> {
    let response = client
        .get(host.url("/api/admin/events/dead-letters"))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

#[tokio::test]
async fn a_failing_subscribers_dead_letter_is_listed_and_replay_empties_the_list() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    stage_plugin(&data, "probe", "0.1.0");
    stage_plugin(&data, "notify", "0.1.0");
    let path = write_web_config(
        dir.path(),
        json!([{ "name": "probe", "version": "0.1.0" }, { "name": "notify", "version": "0.1.0" }]),
        |config| {
            config["events"] = json!({ "poll_ms": 50, "retry_base_ms": 20, "retry_max_ms": 100, "max_attempts": 3 });
        },
    );
    let host = serve_config(dir.path(), &path, &[]).await;
    let client = client_with_token(Some(TOKEN));
    let failing = |on: &'static str| {
        let client = client.clone();
        let url = host.url(&format!("/p/probe/fail-events?on={on}"));
        async move {
            let response = client.get(url).send().await.expect("answered");
            assert_eq!(response.status(), 200);
        }
    };
    failing("yes").await;
    let published = client
        .post(host.url("/p/probe/publish?topic=goods.stock-low"))
        .body("{\"sku\":\"WEB-DL-1\"}")
        .send()
        .await
        .expect("answered");
    assert_eq!(published.status(), 200);
    eventually(
        "probe's delivery to land in the dead letters",
        Duration::from_secs(15),
        || async { (!dead_letters(&client, &host).await.is_empty()).then_some(()) },
    )
    .await;

    let browser = Browser::start().await;
    let page = browser.page().await;
    page.size(1280, 800).await;
    open_signed_in(&page, &host, "/dead-letters").await;
    let row = page.text("tr[data-dead-letter]").await;
    assert!(row.contains("goods.stock-low"), "{row}");
    assert!(row.contains("probe"), "{row}");
    let error = page.text("tr[data-dead-letter] .dead-error").await;
    assert!(
        error.len() > "Payload".len(),
        "the last error is shown: {error}"
    );
    assert_eq!(
        page.text("tr[data-dead-letter] td[data-label=Attempts]")
            .await,
        "3"
    );
    page.screenshot("dead-letters").await;

    failing("no").await;
    page.click("#replay-all").await;
    let said = page.text("#dead-letters .empty .empty-title").await;
    assert_eq!(said, "No dead letters.");
    assert!(
        page.text("#dead-letters-notice")
            .await
            .contains("1 delivery")
    );
    assert!(dead_letters(&client, &host).await.is_empty());
    page.screenshot("dead-letters-empty").await;
    host.stop().await;
}

/// goods 1.0.0 staged in `data` with settings of each type in its manifest:
/// its own `low_stock_threshold` (an int) and one more of every other type.
fn stage_goods_with_settings(data: &Path) {
    stage_plugin(data, "goods", "1.0.0");
    let manifest = data.join("plugins/goods/1.0.0/plugin.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    assert!(
        text.contains("key = \"low_stock_threshold\""),
        "goods declares the setting it reads"
    );
    let settings = r#"
[[settings]]
key = "shop_name"
type = "string"
title = "Shop name"
default = "Main store"

[[settings]]
key = "sync"
type = "enum"
title = "Marketplace sync"
values = ["off", "hourly", "daily"]
default = "off"

[[settings]]
key = "notify_staff"
type = "bool"
title = "Tell staff about low stock"
default = "true"

[[settings]]
key = "api_key"
type = "secret"
title = "Marketplace API key"
"#;
    std::fs::write(&manifest, format!("{text}\n{settings}")).expect("write manifest");
}

#[tokio::test]
async fn the_settings_form_saves_a_value_and_shows_a_wrong_one_beside_its_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    stage_goods_with_settings(&dir.path().join("data"));
    let path = write_web_config(
        dir.path(),
        json!([{ "name": "goods", "version": "1.0.0" }]),
        |_| {},
    );
    let host = serve_config(dir.path(), &path, &[("RUST_LOG", "debug")]).await;
    let browser = Browser::start().await;
    let page = browser.page().await;
    page.size(1280, 800).await;
    open_signed_in(&page, &host, "/settings").await;

    let field = "#setting-goods-low_stock_threshold";
    page.text("#settings-goods").await;
    assert_eq!(
        page.eval(&format!("document.querySelector({}).value", quoted(field)))
            .await,
        json!("5")
    );
    assert_eq!(
        page.eval("document.querySelector('#setting-goods-sync').tagName")
            .await,
        json!("SELECT")
    );
    assert_eq!(
        page.eval("document.querySelector('#setting-goods-notify_staff').type")
            .await,
        json!("checkbox")
    );
    assert_eq!(
        page.eval("document.querySelector('#setting-goods-api_key').type")
            .await,
        json!("password")
    );
    assert_eq!(
        page.text("[data-field=api_key] .secret-state").await,
        "not set"
    );

    page.fill(field, "many").await;
    page.click("#settings-goods button[type=submit]").await;
    let refusal = page.text(&format!("{field}-error .alert")).await;
    assert!(
        refusal.contains("setting \"low_stock_threshold\"") && refusal.contains("integer"),
        "the host's message beside the field: {refusal}"
    );
    assert!(refusal.contains("request id"), "{refusal}");
    page.screenshot("settings-refused").await;

    page.fill(field, "12").await;
    page.fill("#setting-goods-api_key", "web-typed-secret-93d1")
        .await;
    page.eval("document.querySelector('#setting-goods-sync').value = 'daily'")
        .await;
    page.click("#settings-goods button[type=submit]").await;
    let notice = page.text("#settings-goods .notice").await;
    assert!(notice.starts_with("Saved"), "{notice}");
    assert_eq!(page.text("[data-field=api_key] .secret-state").await, "set");
    assert_eq!(
        page.eval("document.querySelector('#setting-goods-api_key').value")
            .await,
        json!(""),
        "the secret is not shown back"
    );
    assert_eq!(
        page.eval(&format!("document.querySelector({}).value", quoted(field)))
            .await,
        json!("12")
    );
    let config_text = std::fs::read_to_string(&path).expect("config.json");
    assert!(
        !config_text.contains("web-typed-secret-93d1"),
        "config.json holds the secret: {config_text}"
    );
    let written: Value = serde_json::from_str(&config_text).expect("json");
    let settings = &written["plugins"][0]["settings"];
    assert!(
        settings["api_key"]["file"].is_string(),
        "the secret is named by its file: {settings}"
    );
    assert_eq!(settings["low_stock_threshold"], 12, "{written}");
    assert_eq!(settings["sync"], "daily", "{written}");
    assert!(
        settings.get("shop_name").is_none(),
        "only what changed is written: {settings}"
    );
    let page_text = page.eval("document.body.innerHTML").await;
    assert!(
        !page_text.to_string().contains("web-typed-secret-93d1"),
        "the page holds the secret"
    );
    page.screenshot_full("settings").await;
    let log = host.stop().await;
    assert!(
        log.contains("plugin settings changed"),
        "the host's log was captured"
    );
    assert!(
        !log.contains("web-typed-secret-93d1"),
        "the log shows the secret"
    );
}
