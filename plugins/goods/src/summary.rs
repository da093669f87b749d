//! goods 1.1.0's nightly `stock-summary` task: one row per run in
//! `goods_stock_summaries` (how many items, units and how much stock value,
//! and how many items are below the low-stock threshold), and
//! `GET /api/stock-summaries`, the newest first.

use plinth_sdk::db::{self, Row};
use plinth_sdk::{Error, Request, Response, settings};
use serde::Serialize;

#[derive(Debug, Serialize)]
struct Summary {
    id: i64,
    taken_at: i64,
    items: i64,
    units: i64,
    value_cents: i64,
    low_items: i64,
}

impl Summary {
    fn from_row(row: &Row) -> Result<Self, db::Error> {
        Ok(Self {
            id: row.get("id")?,
            taken_at: row.get("taken_at")?,
            items: row.get("items")?,
            units: row.get("units")?,
            value_cents: row.get("value_cents")?,
            low_items: row.get("low_items")?,
        })
    }
}

/// The task: totals are added up here rather than with SQL `SUM`, whose
/// result type differs per database (PostgreSQL answers NUMERIC).
pub fn write() -> Result<(), String> {
    let threshold: i64 = settings::get_or("low_stock_threshold", 5);
    let rows = db::query(
        &format!("SELECT stock, price_cents FROM {}", db::table("items")),
        &[],
    )?;
    let (mut items, mut units, mut value_cents, mut low_items) = (0i64, 0i64, 0i64, 0i64);
    for row in rows.iter() {
        let stock: i64 = row.get("stock")?;
        let price: i64 = row.get("price_cents")?;
        items += 1;
        units = units.saturating_add(stock);
        value_cents = value_cents.saturating_add(stock.saturating_mul(price));
        low_items += i64::from(stock < threshold);
    }
    db::execute(
        &format!(
            "INSERT INTO {} (taken_at, items, units, value_cents, low_items) VALUES (?, ?, ?, ?, ?)",
            db::table("stock_summaries")
        ),
        &[
            super::now_ms().into(),
            items.into(),
            units.into(),
            value_cents.into(),
            low_items.into(),
        ],
    )?;
    Ok(())
}

/// `GET /api/stock-summaries`: the 100 newest summaries.
pub fn list(_req: &Request) -> Result<Response, Error> {
    let rows = db::query(
        &format!(
            "SELECT id, taken_at, items, units, value_cents, low_items FROM {} ORDER BY id DESC LIMIT 100",
            db::table("stock_summaries")
        ),
        &[],
    )?;
    let summaries = rows
        .iter()
        .map(Summary::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Response::json(200, &summaries))
}
