//! goods: products and stock.
//!
//! A JSON API under `/api/items`, a server-rendered page at `/`, a
//! `low-stock-report` task and a `goods.stock-low` event. Every table name
//! goes through `db::table`, so the `goods-acme` fork (prefix `goods_acme_`)
//! runs this same code. With the `v1_1` feature this is goods 1.1.0, whose
//! items carry a `category` and which writes a nightly stock summary
//! ([`summary`]).

use std::time::{SystemTime, UNIX_EPOCH};

use plinth_sdk::db::{self, Row};
use plinth_sdk::{
    Error, Plugin, Request, Response, Router, auth, events, files, html, info, log, settings,
};
use serde::{Deserialize, Serialize};

#[cfg(feature = "v1_1")]
mod summary;

struct Goods;

impl Plugin for Goods {
    fn router() -> Router {
        Router::new()
            .get("/", page)
            .post("/", page_add)
            .get("/api/items", list)
            .post("/api/items", create)
            .get("/api/items/:id", show)
            .put("/api/items/:id", update)
            .delete("/api/items/:id", remove)
            .post("/api/items/:id/stock", adjust_stock)
            .put("/api/items/:id/images/:file", set_image)
            .post("/api/items/:id/images", set_image)
            .get("/api/items/:id/image", show_image)
            .get("/api/stock-summaries", stock_summaries)
            // Every answer, 404s included, says which installed version
            // served it; the upgrade tests watch this header flip.
            .map_response(|r| r.with_header("x-plugin-version", info::version()))
    }

    fn install(from: Option<&str>, to: &str) -> Result<(), String> {
        log::info!(
            "{} install: from {} to {to}",
            info::name(),
            from.unwrap_or("nothing (first install)")
        );
        #[cfg(feature = "v1_1")]
        if from.is_some_and(|v| older_than(v, (1, 1, 0))) {
            // 0002_add_category.sql has just added the column as NULL.
            let n = db::execute(
                &format!(
                    "UPDATE {} SET category = ? WHERE category IS NULL",
                    db::table("items")
                ),
                &["general".into()],
            )?;
            log::info!("back-filled category = 'general' on {n} item(s)");
        }
        Ok(())
    }

    fn run_task(name: &str) -> Result<(), String> {
        match name {
            "low-stock-report" => low_stock_report(),
            #[cfg(feature = "v1_1")]
            "stock-summary" => summary::write(),
            other => Err(format!("unknown task: {other}")),
        }
    }
}

plinth_sdk::export!(Goods);

// ---------------------------------------------------------------- items

#[cfg(not(feature = "v1_1"))]
const COLUMNS: &str = "id, sku, name, price_cents, stock, created_at";
#[cfg(feature = "v1_1")]
const COLUMNS: &str = "id, sku, name, price_cents, stock, created_at, category";

#[derive(Debug, Serialize)]
struct Item {
    id: i64,
    sku: String,
    name: String,
    price_cents: i64,
    stock: i64,
    created_at: i64,
    #[cfg(feature = "v1_1")]
    category: Option<String>,
}

impl Item {
    fn from_row(row: &Row) -> Result<Self, db::Error> {
        Ok(Self {
            id: row.get("id")?,
            sku: row.get("sku")?,
            name: row.get("name")?,
            price_cents: row.get("price_cents")?,
            stock: row.get("stock")?,
            created_at: row.get("created_at")?,
            #[cfg(feature = "v1_1")]
            category: row.get("category")?,
        })
    }
}

fn select(filter: &str, params: &[db::Value]) -> Result<Vec<Item>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM {} {filter}", db::table("items"));
    let rows = db::query(&sql, params)?;
    Ok(rows.iter().map(Item::from_row).collect::<Result<_, _>>()?)
}

fn find(id: i64) -> Result<Option<Item>, Error> {
    Ok(select("WHERE id = ?", &[id.into()])?.into_iter().next())
}

fn find_or_404(id: i64) -> Result<Item, Error> {
    find(id)?.ok_or_else(|| Error::not_found(format!("no item with id {id}")))
}

/// All items, or those whose sku or name contains `q` (any case).
fn search(q: Option<&str>) -> Result<Vec<Item>, Error> {
    match q.map(str::trim).filter(|q| !q.is_empty()) {
        None => select("ORDER BY id", &[]),
        Some(q) => {
            // Lower-cased on both sides: LIKE's case rules differ by dialect.
            let pattern = format!("%{}%", q.to_lowercase());
            select(
                "WHERE LOWER(sku) LIKE ? OR LOWER(name) LIKE ? ORDER BY id",
                &[pattern.clone().into(), pattern.into()],
            )
        }
    }
}

#[derive(Debug, Deserialize)]
struct NewItem {
    sku: String,
    name: String,
    #[serde(default)]
    price_cents: i64,
    #[serde(default)]
    stock: i64,
    #[cfg(feature = "v1_1")]
    #[serde(default)]
    category: Option<String>,
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(Error::bad_request(format!("`{field}` must not be empty")));
    }
    if value.chars().count() > max {
        return Err(Error::bad_request(format!(
            "`{field}` is longer than {max} characters"
        )));
    }
    Ok(())
}

fn check_non_negative(field: &str, value: i64) -> Result<(), Error> {
    if value < 0 {
        return Err(Error::bad_request(format!(
            "`{field}` must not be negative"
        )));
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Validates and inserts; 409 when the sku is taken.
fn insert(new: NewItem) -> Result<Item, Error> {
    let sku = new.sku.trim().to_owned();
    check_text("sku", &sku, 64)?;
    check_text("name", &new.name, 255)?;
    check_non_negative("price_cents", new.price_cents)?;
    check_non_negative("stock", new.stock)?;
    let taken = || Error::conflict(format!("an item with sku {sku:?} already exists"));
    if !select("WHERE sku = ?", &[sku.as_str().into()])?.is_empty() {
        return Err(taken());
    }

    #[cfg(not(feature = "v1_1"))]
    let (sql, params) = (
        "(sku, name, price_cents, stock, created_at) VALUES (?, ?, ?, ?, ?)",
        vec![
            sku.as_str().into(),
            new.name.trim().into(),
            new.price_cents.into(),
            new.stock.into(),
            now_ms().into(),
        ],
    );
    #[cfg(feature = "v1_1")]
    let (sql, params) = (
        "(sku, name, price_cents, stock, created_at, category) VALUES (?, ?, ?, ?, ?, ?)",
        vec![
            sku.as_str().into(),
            new.name.trim().into(),
            new.price_cents.into(),
            new.stock.into(),
            now_ms().into(),
            new.category.unwrap_or_else(|| "general".to_owned()).into(),
        ],
    );
    // The check above narrows the window; the unique index closes it.
    match db::execute(
        &format!("INSERT INTO {} {sql}", db::table("items")),
        &params,
    ) {
        Err(e) if e.is_unique_violation() => return Err(taken()),
        other => other?,
    };
    // No portable RETURNING/last-insert-id, but the sku is unique.
    select("WHERE sku = ?", &[sku.into()])?
        .into_iter()
        .next()
        .ok_or_else(|| Error::internal("the new item vanished"))
}

// ------------------------------------------------------------- JSON API

fn list(req: &Request) -> Result<Response, Error> {
    Ok(Response::json(200, &search(req.query("q").as_deref())?))
}

fn show(req: &Request) -> Result<Response, Error> {
    Ok(Response::json(200, &find_or_404(req.param_parse("id")?)?))
}

fn create(req: &Request) -> Result<Response, Error> {
    let item = insert(req.json()?)?;
    log::info!("created item {} ({})", item.id, item.sku);
    let location = format!("{}/api/items/{}", info::mount_path(), item.id);
    Ok(Response::json(201, &item).with_header("location", &location))
}

#[derive(Debug, Deserialize)]
struct ItemChanges {
    name: Option<String>,
    price_cents: Option<i64>,
    stock: Option<i64>,
    #[cfg(feature = "v1_1")]
    category: Option<String>,
}

fn update(req: &Request) -> Result<Response, Error> {
    let id: i64 = req.param_parse("id")?;
    let changes: ItemChanges = req.json()?;
    // Checked first: MySQL counts only rows whose values changed, so
    // "0 rows affected" cannot tell a missing item from an unchanged one.
    find_or_404(id)?;

    let mut sets = Vec::new();
    let mut params: Vec<db::Value> = Vec::new();
    if let Some(name) = changes.name {
        check_text("name", &name, 255)?;
        sets.push("name = ?");
        params.push(name.trim().into());
    }
    if let Some(price) = changes.price_cents {
        check_non_negative("price_cents", price)?;
        sets.push("price_cents = ?");
        params.push(price.into());
    }
    if let Some(stock) = changes.stock {
        check_non_negative("stock", stock)?;
        sets.push("stock = ?");
        params.push(stock.into());
    }
    #[cfg(feature = "v1_1")]
    if let Some(category) = changes.category {
        sets.push("category = ?");
        params.push(category.into());
    }
    if sets.is_empty() {
        return Err(Error::bad_request(
            "nothing to update: give name, price_cents or stock",
        ));
    }
    params.push(id.into());
    let sql = format!(
        "UPDATE {} SET {} WHERE id = ?",
        db::table("items"),
        sets.join(", ")
    );
    db::execute(&sql, &params)?;
    Ok(Response::json(200, &find_or_404(id)?))
}

fn remove(req: &Request) -> Result<Response, Error> {
    // The route needs only goods.items.read (plugin.toml); deleting needs
    // the button's code, checked here where the deletion happens.
    auth::require("B_GOODS_ITEM_DELETE")?;
    let id: i64 = req.param_parse("id")?;
    let n = db::execute(
        &format!("DELETE FROM {} WHERE id = ?", db::table("items")),
        &[id.into()],
    )?;
    if n == 0 {
        return Err(Error::not_found(format!("no item with id {id}")));
    }
    let by = req.user().map_or_else(|| "nobody".to_owned(), |u| u.login);
    log::info!("deleted item {id} (by {by})");
    Ok(Response::empty(204))
}

#[derive(Debug, Deserialize)]
struct StockChange {
    delta: i64,
}

/// Changes an item's stock by `delta`. When the change takes the stock
/// under the `low_stock_threshold` setting, `goods.stock-low` is published
/// in the same transaction: the event exists exactly when the change does.
fn adjust_stock(req: &Request) -> Result<Response, Error> {
    let id: i64 = req.param_parse("id")?;
    let StockChange { delta } = req.json()?;
    let item = db::transaction(|tx| {
        if delta != 0 {
            // One statement, so concurrent adjustments cannot take stock
            // below zero between a read and a write.
            let sql = format!(
                "UPDATE {} SET stock = stock + ? WHERE id = ? AND stock + ? >= 0",
                db::table("items")
            );
            if tx.execute(&sql, &[delta.into(), id.into(), delta.into()])? == 0 {
                let item = find_or_404(id)?;
                return Err(Error::conflict(format!(
                    "stock of {} cannot go below zero: have {}, change {delta}",
                    item.sku, item.stock
                )));
            }
        }
        let item = find_or_404(id)?;
        let threshold: i64 = settings::get_or("low_stock_threshold", 5);
        if item.stock < threshold && item.stock - delta >= threshold {
            events::publish_json(
                "goods.stock-low",
                &serde_json::json!({
                    "threshold": threshold,
                    "items": [{ "id": item.id, "sku": item.sku, "name": item.name, "stock": item.stock }],
                }),
            )?;
        }
        Ok::<_, Error>(item)
    })?;
    Ok(Response::json(200, &item))
}

// ---------------------------------------------------------- item image

/// What the host sends after it stored an upload (manifest `[[uploads]]`).
#[derive(Debug, Deserialize)]
struct Upload {
    stored: StoredFile,
}

#[derive(Debug, Deserialize)]
struct StoredFile {
    file: String,
    size: u64,
    content_type: String,
}

/// `PUT /api/items/:id/images/:file` (the raw image as the body) and
/// `POST /api/items/:id/images` (a form with one file part, stored under
/// the name it was sent with): the host has streamed the image into
/// `public/items/<id>/<file>` (never through this guest); goods accepts it
/// for an existing item and an image type, and the host then keeps it and
/// serves it at `/files/goods/items/<id>/<file>`. A refusal leaves no file.
fn set_image(req: &Request) -> Result<Response, Error> {
    let id: i64 = req.param_parse("id")?;
    let Upload { stored } = req.json()?;
    find_or_404(id)?;
    if !stored.content_type.starts_with("image/") {
        return Err(Error::bad_request(format!(
            "an item image must be sent with an image/* Content-Type (got {:?})",
            stored.content_type
        )));
    }
    let public = stored
        .file
        .strip_prefix("public/")
        .ok_or_else(|| Error::internal("the upload was not stored under public/"))?;
    let image = ItemImage {
        image: format!("/files/{}/{public}", info::name()),
        content_type: stored.content_type,
        size: stored.size,
        uploaded_at: now_ms(),
    };
    // Private metadata beside the public file, through the `files`
    // interface; like the image it outlives this version of goods.
    let record = serde_json::to_vec(&image)
        .map_err(|e| Error::internal(format!("cannot record the image: {e}")))?;
    files::write(&image_record(id), record)?;
    Ok(Response::json(200, &image))
}

#[derive(Debug, Serialize, Deserialize)]
struct ItemImage {
    image: String,
    content_type: String,
    size: u64,
    uploaded_at: i64,
}

fn image_record(id: i64) -> String {
    format!("items/{id}/image.json")
}

/// `GET /api/items/:id/image`: the item's current image, as recorded.
fn show_image(req: &Request) -> Result<Response, Error> {
    let id: i64 = req.param_parse("id")?;
    find_or_404(id)?;
    match files::stat(&image_record(id))? {
        None => Err(Error::not_found(format!("item {id} has no image"))),
        Some(_) => {
            let image: ItemImage = serde_json::from_slice(&files::read(&image_record(id))?)
                .map_err(|e| {
                    Error::internal(format!("item {id}'s image record is damaged: {e}"))
                })?;
            Ok(Response::json(200, &image))
        }
    }
}

// ------------------------------------------------------------ HTML page

fn page(req: &Request) -> Result<Response, Error> {
    let q = req.query("q");
    render(
        200,
        &search(q.as_deref())?,
        q.as_deref().unwrap_or(""),
        None,
    )
}

/// The page's add form posts here (urlencoded); success redirects back,
/// failure shows the page again with the message.
fn page_add(req: &Request) -> Result<Response, Error> {
    match form_item(req).and_then(insert) {
        Ok(_) => Ok(Response::redirect(&format!("{}/", info::mount_path()))),
        Err(e) => render(e.status(), &search(None)?, "", Some(e.message())),
    }
}

fn form_item(req: &Request) -> Result<NewItem, Error> {
    let field = |name: &str| req.form(name).unwrap_or_default();
    let number = |name: &str| -> Result<i64, Error> {
        let raw = field(name);
        match raw.trim() {
            "" => Ok(0),
            n => n
                .parse()
                .map_err(|_| Error::bad_request(format!("`{name}` must be a whole number"))),
        }
    };
    Ok(NewItem {
        sku: field("sku"),
        name: field("name"),
        price_cents: number("price_cents")?,
        stock: number("stock")?,
        #[cfg(feature = "v1_1")]
        category: Some(field("category")).filter(|c| !c.trim().is_empty()),
    })
}

fn render(status: u16, items: &[Item], q: &str, error: Option<&str>) -> Result<Response, Error> {
    let e = html::escape;
    let base = e(info::mount_path());
    // The page offers only what the caller may do; the handlers check the
    // same codes again (a hidden button is not a refusal).
    let may_delete = auth::has_permission("B_GOODS_ITEM_DELETE");
    let may_write = auth::has_permission("goods.items.write");
    let mut rows = String::new();
    for item in items {
        #[cfg(feature = "v1_1")]
        let category = format!("<td>{}</td>", e(item.category.as_deref().unwrap_or("")));
        #[cfg(not(feature = "v1_1"))]
        let category = "";
        let delete = if may_delete {
            format!(
                "<td><button type=button class=delete data-delete={} aria-label=\"Delete {}\">Delete</button></td>",
                item.id,
                e(&item.sku)
            )
        } else {
            String::new()
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td>{category}<td class=n>{}.{:02}</td><td class=n>{}</td>{delete}</tr>\n",
            e(&item.sku),
            e(&item.name),
            item.price_cents / 100,
            item.price_cents % 100,
            item.stock
        ));
    }
    if items.is_empty() {
        rows.push_str("<tr><td colspan=6>No items.</td></tr>\n");
    }
    let delete_head = if may_delete { "<th></th>" } else { "" };
    // Deleting goes through the API (DELETE /api/items/{id}), whose
    // handler checks the button's code.
    let delete_script = if may_delete {
        format!(
            r#"<script>
document.addEventListener("click", async (e) => {{
  const id = e.target.dataset && e.target.dataset.delete;
  if (!id || !confirm("Delete this item? This cannot be undone.")) return;
  const r = await fetch("{base}/api/items/" + id, {{ method: "DELETE" }});
  if (r.ok) location.reload();
  else alert(((await r.json().catch(() => ({{}}))).error || {{}}).message || r.status);
}});
</script>"#
        )
    } else {
        String::new()
    };
    let (category_head, category_input) = if cfg!(feature = "v1_1") {
        (
            "<th>Category</th>",
            "<input name=category placeholder=Category>",
        )
    } else {
        ("", "")
    };
    let error = error.map_or(String::new(), |m| format!("<p class=error>{}</p>", e(m)));
    let add_form = if may_write {
        format!(
            r#"<h2>Add an item</h2>
{error}<form method=post action="{base}/">
<input name=sku placeholder=SKU required maxlength=64>
<input name=name placeholder=Name required maxlength=255>
{category_input}
<input name=price_cents type=number min=0 placeholder="Price (cents)">
<input name=stock type=number min=0 placeholder=Stock>
<button>Add</button>
</form>"#
        )
    } else {
        error
    };
    let body = format!(
        r#"<!doctype html>
<html lang=en><head><meta charset=utf-8><title>Goods</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .25rem .75rem; border-bottom: 1px solid #ddd; text-align: left; }}
.n {{ text-align: right; }} .error {{ color: #b00; }} form {{ margin: 1rem 0; }}
</style></head>
<body>
<h1>{name} <small>{version}</small></h1>
<form method=get action="{base}/"><input name=q value="{q}" placeholder="Search sku or name"> <button>Search</button></form>
<table><thead><tr><th>SKU</th><th>Name</th>{category_head}<th>Price</th><th>Stock</th>{delete_head}</tr></thead>
<tbody>
{rows}</tbody></table>
{add_form}
{delete_script}
</body></html>
"#,
        name = e(info::name()),
        version = e(info::version()),
        q = e(q),
    );
    Ok(Response::html(status, body))
}

// ----------------------------------------------------------------- task

/// `GET /api/stock-summaries`: 1.1.0's nightly summaries; 1.0.0 has none.
fn stock_summaries(req: &Request) -> Result<Response, Error> {
    #[cfg(feature = "v1_1")]
    return summary::list(req);
    #[cfg(not(feature = "v1_1"))]
    {
        let _ = req;
        Err(Error::not_found("stock summaries arrive with goods 1.1.0"))
    }
}

/// Logs the items whose stock is below the `low_stock_threshold` setting
/// (default 5) and, when there are any, publishes `goods.stock-low`.
fn low_stock_report() -> Result<(), String> {
    let threshold: i64 = settings::get_or("low_stock_threshold", 5);
    let items = select("WHERE stock < ? ORDER BY sku", &[threshold.into()])?;
    if items.is_empty() {
        log::info!("low-stock-report: no item has stock below {threshold}");
        return Ok(());
    }
    let listing: Vec<String> = items
        .iter()
        .map(|i| format!("{} ({})", i.sku, i.stock))
        .collect();
    log::warn!(
        "low-stock-report: {} item(s) with stock below {threshold}: {}",
        items.len(),
        listing.join(", ")
    );
    let payload = serde_json::json!({
        "plugin": info::name(),
        "threshold": threshold,
        "items": items
            .iter()
            .map(|i| serde_json::json!({ "id": i.id, "sku": i.sku, "name": i.name, "stock": i.stock }))
            .collect::<Vec<_>>(),
    });
    events::publish_json("goods.stock-low", &payload)?;
    Ok(())
}

/// Whether semver `version` is below `(major, minor, patch)`; pre-release
/// and build suffixes are ignored. An unparsable version counts as older.
#[cfg(feature = "v1_1")]
fn older_than(version: &str, than: (u64, u64, u64)) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or("");
    let mut parts = core.split('.').map(|p| p.parse::<u64>());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => (a, b, c) < than,
        _ => true,
    }
}
