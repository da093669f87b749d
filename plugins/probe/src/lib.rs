//! probe: misbehaves on request, for the host's isolation tests.
//!
//! | route | does |
//! | --- | --- |
//! | `GET /ok` | 200 `ok` |
//! | `GET /spin` | loops forever (the host's CPU budget must stop it) |
//! | `GET /grow?mb=N` | allocates and touches N MiB, then 200 `{"mb": N}` |
//! | `GET /panic` | panics (a trap; the host answers 500) |
//! | `GET /sql?stmt=…` | `db::query`: 200 `{"columns", "rows"}`, 403 refused, 400 invalid, 500 failed |
//! | `GET /exec?stmt=…` | `db::execute`: 200 `{"affected": n}`, same errors |
//! | `GET /kv?value=…` | sets key `probe` then reads it back: 200 with the value |
//! | `GET /setting?key=k` | 200 with the setting's value, 404 when unset |
//! | `GET /info` | the plugin-info values as JSON |
//! | `GET /last-event?topic=t` | the last payload received on topic `t`, 404 if none |
//!
//! Tasks: `ok` succeeds, `fail` fails, `spin` never returns.
//! Events: each payload received is kept in kv under `event:<topic>`.

use std::hint::black_box;

use plinth_sdk::{Error, Plugin, Request, Response, Router, db, info, kv, settings};

struct Probe;

impl Plugin for Probe {
    fn router() -> Router {
        Router::new()
            .get("/ok", |_req: &Request| "ok")
            .get("/spin", spin)
            .get("/grow", grow)
            .get("/panic", |_req: &Request| -> Response {
                panic!("probe: /panic was requested")
            })
            .get("/sql", sql_query)
            .get("/exec", sql_execute)
            // Statements too long for a URL (tests of the guard's limits).
            .post("/sql", sql_query)
            .get("/kv", kv_roundtrip)
            .get("/setting", setting)
            .get("/info", plugin_info)
            .get("/last-event", last_event)
            // The header names the plugin was handed (the host strips
            // credentials before the call).
            .get("/headers", |req: &Request| {
                let names: Vec<&str> = req.headers().iter().map(|(n, _)| n.as_str()).collect();
                Response::json(200, &names)
            })
    }

    fn run_task(name: &str) -> Result<(), String> {
        match name {
            "ok" => Ok(()),
            "fail" => Err("probe: task `fail` failed as asked".to_owned()),
            "spin" => forever(),
            other => Err(format!("unknown task: {other}")),
        }
    }

    fn on_event(topic: &str, payload: &str) -> Result<(), String> {
        kv::set(&format!("event:{topic}"), payload)?;
        Ok(())
    }
}

plinth_sdk::export!(Probe);

/// Burns CPU forever; `black_box` keeps the optimiser from proving the loop
/// useless and deleting it.
fn forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn spin(_req: &Request) -> Response {
    forever()
}

fn grow(req: &Request) -> Result<Response, Error> {
    let mb: usize = req.query_parse("mb")?;
    let len = mb
        .checked_mul(1 << 20)
        .ok_or_else(|| Error::bad_request("mb is too large"))?;
    // A non-zero fill writes every page, so the memory is really committed
    // (a zeroed allocation could be satisfied by fresh, untouched pages).
    let block = black_box(vec![0xA5_u8; len]);
    let touched = block.iter().step_by(4096).filter(|b| **b == 0xA5).count();
    Ok(Response::json(
        200,
        &serde_json::json!({ "mb": mb, "pages": touched }),
    ))
}

/// The statement: the `stmt` query parameter, or a POST's text body.
fn statement(req: &Request) -> Result<String, Error> {
    if req.method() == "POST" {
        return req.text().map(str::to_owned);
    }
    req.query("stmt")
        .ok_or_else(|| Error::bad_request("missing query parameter `stmt`"))
}

/// Refused → 403, invalid → 400, failed → 500, each as `{"error": text}`
/// with the host's text unchanged (the SDK's `db::Error` → `Error` mapping).
fn sql_query(req: &Request) -> Result<Response, Error> {
    let rows = db::query(&statement(req)?, &[])?;
    Ok(Response::json(200, &rows.to_json()))
}

fn sql_execute(req: &Request) -> Result<Response, Error> {
    let affected = db::execute(&statement(req)?, &[])?;
    Ok(Response::json(
        200,
        &serde_json::json!({ "affected": affected }),
    ))
}

fn kv_roundtrip(req: &Request) -> Result<Response, Error> {
    let value = req.query("value").unwrap_or_else(|| "roundtrip".to_owned());
    kv::set("probe", &value)?;
    let back = kv::get_string("probe")?.ok_or_else(|| Error::internal("kv lost the value"))?;
    Ok(Response::text(200, back))
}

fn setting(req: &Request) -> Result<Response, Error> {
    let key = req
        .query("key")
        .ok_or_else(|| Error::bad_request("missing query parameter `key`"))?;
    settings::get(&key)
        .map(|v| Response::text(200, v))
        .ok_or_else(|| Error::not_found(format!("setting `{key}` is not set")))
}

fn plugin_info(_req: &Request) -> Response {
    Response::json(
        200,
        &serde_json::json!({
            "name": info::name(),
            "version": info::version(),
            "table_prefix": info::table_prefix(),
            "mount_path": info::mount_path(),
            "table": db::table("notes"),
        }),
    )
}

fn last_event(req: &Request) -> Result<Response, Error> {
    let topic = req
        .query("topic")
        .ok_or_else(|| Error::bad_request("missing query parameter `topic`"))?;
    kv::get_string(&format!("event:{topic}"))?
        .map(|payload| Response::text(200, payload))
        .ok_or_else(|| Error::not_found(format!("no event received on `{topic}`")))
}
