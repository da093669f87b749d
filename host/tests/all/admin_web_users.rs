//! The users, roles, service tokens and audit pages of the admin web in a
//! real headless Chromium against the real `plinth serve` binary: a user
//! made and given a role in the pages signs in elsewhere, sees what the
//! role opens, and is shut out by "sign out everywhere" and by disabling,
//! and let in again at once when an administrator unlocks a lock-out;
//! the clerk sees no delete button and is refused the delete anyway; a
//! token is shown once, works, and stops working when revoked; the audit
//! log filters and pages. Screenshots go to `target/screenshots/`.

use serde_json::{Value, json};

use crate::admin_web::{LOGIN, TOKEN, serve, serve_with, sign_in, submit_sign_in};
use crate::browser::{Browser, Page};
use crate::support::ServeProcess;

/// Calls the admin API as the bootstrap token: status and JSON body.
async fn admin_api(
    host: &ServeProcess,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, host.url(&format!("/api/admin{path}")))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("admin API answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Opens `route` (`#/users`, …) in the signed-in shell and waits for `ready`.
async fn open(page: &Page<'_>, route: &str, ready: &str) {
    page.eval(&format!("location.hash = {}", json!(route)))
        .await;
    page.text(ready).await;
}

/// Confirms the open dialog with its submit button.
async fn confirm(page: &Page<'_>) {
    page.click("dialog[open] button[type=submit]").await;
    page.wait_for("the dialog to close", "!document.querySelector('dialog')")
        .await;
}

/// The goods page inside the shell's frame, once loaded: its text.
async fn goods_frame(page: &Page<'_>) -> String {
    page.wait_for(
        "the goods page in the frame",
        "(() => { const f = document.getElementById('plugin-frame'); \
         const d = f && f.contentDocument; \
         return d && d.location.pathname === '/p/goods/' && d.readyState === 'complete' && d.body && d.body.innerText; })()",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

const FRAME_DELETE_BUTTONS: &str = "document.getElementById('plugin-frame').contentDocument.querySelectorAll('button[data-delete]').length";

#[tokio::test]
async fn a_user_made_in_the_pages_signs_in_with_its_role_and_is_shut_out_when_revoked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = serve(dir.path(), true, None).await;
    let browser = Browser::start().await;
    let admin = browser.page().await;
    admin.goto(&host.url("/#/roles")).await;
    sign_in(&admin).await;

    // A role made in the roles page, granted the goods menu's code and the
    // audit log through the tree's check boxes.
    admin.fill("#new-role-name", "stock").await;
    admin.fill("#new-role-title", "Stock keepers").await;
    admin.click("#create-role").await;
    admin.text("[data-grants-of='stock']").await;
    let tree = admin
        .eval(
            "({ plugin: !!document.querySelector(\"details[data-plugin='goods']\"), \
               menu: !!document.querySelector(\"li[data-menu='goods/goods'] input[data-code='goods.items.read']\"), \
               button: !!document.querySelector(\"li[data-menu='goods/goods'] li[data-button='B_GOODS_ITEM_DELETE'] input\"), \
               api: !!document.querySelector(\"li[data-api='goods.items.write'] input\"), \
               host: !!document.querySelector(\"details[data-plugin=''] input[data-code='plugins.install']\") })",
        )
        .await;
    assert_eq!(
        tree,
        json!({ "plugin": true, "menu": true, "button": true, "api": true, "host": true }),
        "goods' menu with its button under it, its API permissions, and the host's codes"
    );
    admin
        .click("li[data-api='goods.items.read'] input[data-code]")
        .await;
    admin
        .wait_for(
            "the grant to be saved",
            "[...document.querySelectorAll(\"li[data-api='goods.items.read'] .grant-state\")].some(s => s.textContent === 'granted')",
        )
        .await;
    assert_eq!(
        admin
            .eval("document.querySelector(\"li[data-menu='goods/goods'] input[data-code='goods.items.read']\").checked")
            .await,
        json!(true),
        "the menu's box of the same code follows"
    );
    admin
        .click("details[data-plugin=''] input[data-code='audit.view']")
        .await;
    admin
        .wait_for(
            "the second grant",
            "(() => { const b = document.querySelector(\"details[data-plugin=''] input[data-code='audit.view']\"); \
             return b.checked && !b.disabled; })()",
        )
        .await;
    let (_, grants) = admin_api(&host, reqwest::Method::GET, "/roles/stock/grants", None).await;
    let granted: Vec<&str> = grants
        .as_array()
        .expect("grants")
        .iter()
        .map(|g| g["permission"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(granted, ["audit.view", "goods.items.read"], "{grants}");
    admin.screenshot_full("roles").await;

    // A user made in the users page, then given the role from its row.
    open(&admin, "#/users", "#new-user-form").await;
    // A refusal shows beside the form with the host's message and its
    // request id.
    admin.fill("#new-login", LOGIN).await;
    admin.fill("#new-password", "Some-password-1").await;
    admin.click("#create-user").await;
    let refusal = admin.text("#new-user-error .alert").await;
    assert!(
        refusal.contains("is taken") && refusal.contains("request id"),
        "{refusal}"
    );
    admin
        .eval("document.querySelector('#new-user-form').reset()")
        .await;
    admin.fill("#new-login", "sam").await;
    admin.fill("#new-display", "Sam Stock").await;
    admin.fill("#new-password", "Sam-password-1").await;
    admin.click("#create-user").await;
    admin.text("tr[data-user='sam']").await;
    admin
        .eval("document.querySelector(\"select[data-grant-role-for='sam']\").value = 'stock'")
        .await;
    admin
        .click("tr[data-user='sam'] button[data-action='grant-role']")
        .await;
    let chips = admin.text("tr[data-user='sam'] .chip").await;
    assert!(chips.contains("stock"), "{chips}");
    assert_eq!(
        admin
            .text("tr[data-user='sam'] td[data-label='Last sign-in']")
            .await,
        "never"
    );
    admin.screenshot("users").await;

    // Sam, in a browser of their own, sees what the role opens and no more.
    let sam = browser.fresh_context_page().await;
    sam.goto(&host.url("/#/p/goods/")).await;
    submit_sign_in(&sam, "sam", "Sam-password-1").await;
    let goods = goods_frame(&sam).await;
    assert!(goods.contains("goods"), "{goods}");
    let nav = sam
        .eval(
            "({ goods: !!document.querySelector(\"nav a[data-menu='goods/goods']\"), \
               links: [...document.querySelectorAll('nav a:not([data-menu])')].map(a => a.textContent) })",
        )
        .await;
    assert_eq!(
        nav,
        json!({ "goods": true, "links": ["Overview", "Audit log"] }),
        "the goods menu and the audit log, no other admin page"
    );
    assert_eq!(
        sam.eval(FRAME_DELETE_BUTTONS).await,
        json!(0),
        "no delete button without B_GOODS_ITEM_DELETE"
    );
    let status = sam
        .eval("fetch('/api/admin/users').then(r => r.status)")
        .await;
    assert_eq!(status, json!(403), "users.manage is not the role's");

    // Signed out everywhere from the admin's users page: Sam's next page
    // load, here the goods page reloading in its frame, asks to sign in.
    admin
        .click("tr[data-user='sam'] button[data-action='sign-out']")
        .await;
    confirm(&admin).await;
    sam.wait_for(
        "Sam's session to end",
        "fetch('/api/auth/me').then(r => r.status === 401)",
    )
    .await;
    sam.eval("document.getElementById('plugin-frame').contentWindow.location.reload()")
        .await;
    sam.wait_for(
        "the sign-in page in the whole window",
        "location.pathname === '/login.html' && !!document.querySelector('#login-form')",
    )
    .await;

    // Sam may sign in again, and comes back to the goods page.
    submit_sign_in(&sam, "sam", "Sam-password-1").await;
    goods_frame(&sam).await;

    // Locked by wrong passwords: the admin's page shows it, and Unlock lets
    // Sam's own password in again at once.
    let sign_in_as_sam = |password: &'static str| {
        let url = host.url("/api/auth/login");
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({ "login": "sam", "password": password }))
                .send()
                .await
                .expect("sign-in answers")
                .status()
                .as_u16()
        }
    };
    for _ in 0..5 {
        assert_eq!(sign_in_as_sam("not-sams-password").await, 401);
    }
    assert_eq!(sign_in_as_sam("Sam-password-1").await, 401, "locked");
    admin.reload().await;
    let badge = |state: &str| {
        format!(
            "(() => {{ const b = document.querySelector(\"tr[data-user='sam'] td[data-label='State'] .badge\"); \
             return b && b.textContent === '{state}'; }})()"
        )
    };
    admin.wait_for("the locked badge", &badge("locked")).await;
    admin.screenshot("users-locked").await;
    admin
        .click("tr[data-user='sam'] button[data-action='unlock']")
        .await;
    admin.wait_for("the active badge", &badge("active")).await;
    assert_eq!(
        admin
            .eval("document.querySelectorAll(\"tr[data-user='sam'] button[data-action='unlock']\").length")
            .await,
        json!(0),
        "no Unlock button on an account that is not locked"
    );
    assert_eq!(sign_in_as_sam("Sam-password-1").await, 200, "unlocked");

    // Disabled from the admin's page: Sam's next API call, opening the
    // audit log, ends on the sign-in page, and signing in is refused.
    admin
        .text("tr[data-user='sam'] button[data-action='disable']")
        .await;
    admin
        .click("tr[data-user='sam'] button[data-action='disable']")
        .await;
    confirm(&admin).await;
    let state = admin
        .wait_for(
            "the disabled badge",
            "(() => { const b = document.querySelector(\"tr[data-user='sam'] td[data-label='State'] .badge\"); \
             return b && b.textContent === 'disabled' && b.textContent; })()",
        )
        .await;
    assert_eq!(state, json!("disabled"));
    assert_ne!(
        admin
            .text("tr[data-user='sam'] td[data-label='Last sign-in']")
            .await,
        "never",
        "the page shows Sam's sign-in"
    );
    sam.eval("location.hash = '#/audit'").await;
    sam.wait_for(
        "the sign-in page after the audit call",
        "location.pathname === '/login.html' && !!document.querySelector('#login-form')",
    )
    .await;
    submit_sign_in(&sam, "sam", "Sam-password-1").await;
    let refusal = sam.text("#login-error .alert").await.to_lowercase();
    assert!(refusal.contains("wrong login or password"), "{refusal}");

    // The users and roles pages at phone width.
    admin.size(390, 844).await;
    admin.reload().await;
    admin.text("tr[data-user='sam']").await;
    assert_eq!(
        admin
            .eval("document.documentElement.scrollWidth <= window.innerWidth + 1")
            .await,
        json!(true),
        "the users page fits 390 px without sideways scrolling"
    );
    admin.screenshot_full("users-390").await;
    open(&admin, "#/roles", "[data-grants-of]").await;
    assert_eq!(
        admin
            .eval("document.documentElement.scrollWidth <= window.innerWidth + 1")
            .await,
        json!(true),
        "the roles page fits 390 px"
    );
    admin.screenshot_full("roles-390").await;
    host.stop().await;
}

#[tokio::test]
async fn the_clerk_sees_no_delete_button_and_the_delete_api_refuses_anyway() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = serve(dir.path(), true, None).await;
    // As the demo seeds it: the clerk role comes with goods' default_roles.
    let (status, body) = admin_api(
        &host,
        reqwest::Method::POST,
        "/users",
        Some(json!({ "login": "clerk", "display_name": "Clerk", "password": "clerk-demo-password", "roles": ["clerk"] })),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let browser = Browser::start().await;
    let admin = browser.page().await;
    admin.goto(&host.url("/#/p/goods/")).await;
    sign_in(&admin).await;
    let item = admin
        .eval(
            "fetch('/p/goods/api/items', { method: 'POST', headers: { 'content-type': 'application/json' }, \
             body: JSON.stringify({ sku: 'WEB-1', name: 'Web test item', price_cents: 150, stock: 3 }) }).then(r => r.json())",
        )
        .await;
    let id = item["id"].as_i64().unwrap_or_else(|| panic!("{item}"));
    admin
        .eval("document.getElementById('plugin-frame').contentWindow.location.reload()")
        .await;
    admin
        .wait_for(
            "the admin's delete button",
            &format!("(() => {{ const d = document.getElementById('plugin-frame').contentDocument; \
              return d && d.readyState === 'complete' && d.querySelector('button[data-delete=\"{id}\"]'); }})()"),
        )
        .await;

    let clerk = browser.fresh_context_page().await;
    clerk.goto(&host.url("/#/p/goods/")).await;
    submit_sign_in(&clerk, "clerk", "clerk-demo-password").await;
    let goods = goods_frame(&clerk).await;
    assert!(
        goods.contains("WEB-1"),
        "the clerk reads the goods: {goods}"
    );
    assert_eq!(
        clerk.eval(FRAME_DELETE_BUTTONS).await,
        json!(0),
        "no delete button for the clerk"
    );
    assert_eq!(
        clerk
            .eval("!!document.getElementById('plugin-frame').contentDocument.querySelector('form[method=post]')")
            .await,
        json!(false),
        "no add form without goods.items.write"
    );
    assert_eq!(
        clerk
            .eval(
                "[!!document.getElementById('user-name'), !!document.getElementById('live-state')]"
            )
            .await,
        json!([true, false]),
        "no live-progress badge without plugins.view, the feed it reports on"
    );
    clerk.screenshot("goods-clerk").await;
    let refused = clerk
        .eval(&format!(
            "fetch('/p/goods/api/items/{id}', {{ method: 'DELETE' }}).then(async r => [r.status, await r.text()])"
        ))
        .await;
    assert_eq!(refused[0], json!(403), "{refused}");
    assert!(
        refused[1]
            .as_str()
            .unwrap_or_default()
            .contains("B_GOODS_ITEM_DELETE"),
        "the refusal names the button's code: {refused}"
    );
    let still = clerk
        .eval(&format!(
            "fetch('/p/goods/api/items/{id}').then(r => r.status)"
        ))
        .await;
    assert_eq!(still, json!(200), "the item is still there");
    host.stop().await;
}

#[tokio::test]
async fn a_service_token_is_shown_once_works_and_stops_when_revoked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = serve(dir.path(), true, None).await;
    let browser = Browser::start().await;
    let page = browser.page().await;
    page.goto(&host.url("/#/tokens")).await;
    sign_in(&page).await;
    page.wait_for(
        "the host's codes",
        "document.querySelector(\"#new-token-permissions input[value='plugins.view']\")",
    )
    .await;
    assert_eq!(
        page.text("#tokens-table .empty-title").await,
        "No service tokens yet."
    );
    page.fill("#new-token-name", "ci-script").await;
    page.click("#new-token-permissions input[value='plugins.view']")
        .await;
    page.click("#create-token").await;
    let token = page
        .wait_for(
            "the new token",
            "document.querySelector('#token-value') && document.querySelector('#token-value').value",
        )
        .await
        .as_str()
        .expect("token")
        .to_owned();
    page.click("#copy-token").await;
    page.text("#copy-status").await;
    page.text("tr[data-token='ci-script']").await;
    page.screenshot("tokens").await;

    let with_token = |path: &str| {
        reqwest::Client::new()
            .get(host.url(path))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(
        with_token("/api/admin/plugins")
            .await
            .expect("answer")
            .status(),
        200
    );
    assert_eq!(
        with_token("/api/admin/users")
            .await
            .expect("answer")
            .status(),
        403,
        "only the chosen permission"
    );

    // Shown once: after a reload the page lists the token, never its value.
    page.reload().await;
    page.text("tr[data-token='ci-script']").await;
    assert_eq!(
        page.eval(&format!(
            "document.body.innerHTML.includes({})",
            json!(token)
        ))
        .await,
        json!(false)
    );
    page.click("tr[data-token='ci-script'] button[data-action='revoke-token']")
        .await;
    confirm(&page).await;
    let state = page
        .wait_for(
            "the revoked badge",
            "(() => { const b = document.querySelector(\"tr[data-token='ci-script'] .badge\"); \
             return b && b.textContent === 'revoked' && b.textContent; })()",
        )
        .await;
    assert_eq!(state, json!("revoked"));
    assert_eq!(
        with_token("/api/admin/plugins")
            .await
            .expect("answer")
            .status(),
        401,
        "a revoked token is refused"
    );
    host.stop().await;
}

#[tokio::test]
async fn the_audit_page_filters_by_user_action_and_time_and_pages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = serve_with(dir.path(), false, None, json!({ "per_ip_per_minute": 100 })).await;
    // 60 role changes (audited as the bootstrap caller), then two failed
    // sign-ins of a login nobody has.
    for i in 0..60 {
        let (status, body) = admin_api(
            &host,
            reqwest::Method::POST,
            "/roles",
            Some(json!({ "name": format!("r{i}") })),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    for _ in 0..2 {
        let answer = reqwest::Client::new()
            .post(host.url("/api/auth/login"))
            .json(&json!({ "login": "ghost", "password": "nope-nope-nope" }))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 401);
    }

    let browser = Browser::start().await;
    let page = browser.page().await;
    page.goto(&host.url("/#/audit")).await;
    sign_in(&page).await;
    let rows = "document.querySelectorAll('#audit-results tr[data-audit]').length";
    page.text("#audit-results tr[data-audit]").await;
    assert_eq!(page.eval(rows).await, json!(50), "a page of 50");
    page.screenshot("audit").await;

    // Paging: the older page holds the rest, the newer button comes back.
    let first_top = page
        .eval("document.querySelector('#audit-results tr[data-audit]').dataset.audit")
        .await;
    page.click("#audit-older").await;
    page.wait_for(
        "the older page",
        &format!(
            "document.querySelector('#audit-results tr[data-audit]').dataset.audit !== {first_top}"
        ),
    )
    .await;
    // 60 roles + 2 refusals + the admin's sign-in = 63 entries.
    assert_eq!(page.eval(rows).await, json!(13));
    assert_eq!(
        page.eval("document.querySelector('#audit-older').disabled")
            .await,
        json!(true)
    );
    page.click("#audit-newer").await;
    page.wait_for(
        "the first page again",
        &format!(
            "document.querySelector('#audit-results tr[data-audit]').dataset.audit === {first_top}"
        ),
    )
    .await;

    // By user: the two refusals of "ghost", and nothing else.
    page.fill("#audit-user", "ghost").await;
    page.click("#audit-apply").await;
    page.wait_for("the ghost's rows", &format!("{rows} === 2"))
        .await;
    let who = page
        .eval("[...document.querySelectorAll(\"#audit-results td[data-label='Who']\")].map(t => t.innerText)")
        .await;
    assert_eq!(who, json!(["ghost", "ghost"]));
    let outcomes = page
        .eval("[...document.querySelectorAll('#audit-results .badge')].map(b => b.textContent)")
        .await;
    assert_eq!(outcomes, json!(["refused", "refused"]));

    // By action: the sign-ins of everyone, the admin's success among them.
    page.eval("document.querySelector('#audit-user').value = ''")
        .await;
    page.fill("#audit-action", "auth.sign_in").await;
    page.click("#audit-apply").await;
    page.wait_for("the sign-ins", &format!("{rows} === 3"))
        .await;
    let actors = page
        .eval("[...document.querySelectorAll(\"#audit-results td[data-label='Who']\")].map(t => t.innerText)")
        .await;
    assert_eq!(actors, json!([LOGIN, "ghost", "ghost"]), "newest first");

    // By time: a range in the future holds nothing, and says so.
    page.eval("document.querySelector('#audit-since').value = '2999-01-01T00:00'")
        .await;
    page.click("#audit-apply").await;
    let nothing = page.text("#audit-results .empty-title").await;
    assert_eq!(nothing, "Nothing matches these filters.");
    // A range around now holds the sign-ins again.
    page.eval(
        "(() => { const f = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); \
          document.querySelector('#audit-since').value = f(new Date(Date.now() - 3600000)); \
          document.querySelector('#audit-until').value = f(new Date(Date.now() + 3600000)); })()",
    )
    .await;
    page.click("#audit-apply").await;
    page.wait_for("the sign-ins in the last hour", &format!("{rows} === 3"))
        .await;
    page.click("#audit-clear").await;
    page.wait_for("every entry again", &format!("{rows} === 50"))
        .await;
    host.stop().await;
}
