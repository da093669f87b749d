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
//! | `POST /publish?topic=t` | publishes the body on `t`: 200, or 500 with the host's error |
//! | `GET /fail-events?on=yes\|no` | makes every later event delivery fail (or not) |
//! | `POST /tx?topic=t&end=commit\|rollback\|open` | in a transaction: writes the body to `probe_events` (topic `tx`) and publishes it on `t`, then commits, rolls back or leaves the transaction open |
//!
//! Install hook, on an upgrade: runs the statements kept in `probe_notes`
//! rows with a negative id (id -1 first, then -2, …) and fails with the
//! first error, so the host's tests can show what the database refuses
//! during an install. A row `publish <topic> <payload>` publishes instead.
//!
//! Tasks: `ok` succeeds, `fail` fails, `spin` never returns.
//! Events: each payload received is kept in kv under `event:<topic>` and
//! appended to the `probe_events` table in the delivery's transaction; a
//! payload `slow:<ms>` then keeps the hook busy that long (so a test can
//! kill the host mid-delivery).

use std::hint::black_box;

use plinth_sdk::{
    Error, Plugin, Request, Response, Router, db, events, files, info, kv, plugins, settings,
};

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
            .get("/file", file_read)
            .put("/file", file_write)
            .get("/call", call_plugin)
            .get("/calling-plugin", calling_plugin)
            .post("/publish", publish)
            .get("/fail-events", fail_events)
            .post("/tx", in_transaction)
            // The header names the plugin was handed (the host strips
            // credentials before the call).
            .get("/headers", |req: &Request| {
                let names: Vec<&str> = req.headers().iter().map(|(n, _)| n.as_str()).collect();
                Response::json(200, &names)
            })
    }

    fn install(from: Option<&str>, _to: &str) -> Result<(), String> {
        if from.is_none() {
            return Ok(());
        }
        let script = db::query(
            &format!(
                "SELECT body FROM {} WHERE id < 0 ORDER BY id DESC",
                db::table("notes")
            ),
            &[],
        )?;
        for row in &script {
            let statement: String = row.get("body")?;
            if let Some(event) = statement.strip_prefix("publish ") {
                let (topic, payload) = event.split_once(' ').unwrap_or((event, ""));
                events::publish(topic, payload).map_err(|e| format!("{statement}: {e}"))?;
                continue;
            }
            db::query(&statement, &[]).map_err(|e| format!("{statement}: {e}"))?;
        }
        Ok(())
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
        if topic == "probe.bench" {
            // The benchmark's subscriber: acknowledged, nothing else.
            return Ok(());
        }
        if kv::get_string(FAIL_EVENTS)?.as_deref() == Some("yes") {
            return Err(format!("probe: failing `{topic}` as asked"));
        }
        kv::set(&format!("event:{topic}"), payload)?;
        db::execute(
            "INSERT INTO probe_events (topic, payload) VALUES (?, ?)",
            &[topic.into(), payload.into()],
        )?;
        if let Some(ms) = payload.strip_prefix("slow:") {
            let ms: u64 = ms
                .parse()
                .map_err(|_| format!("slow:<ms>, not {payload:?}"))?;
            let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
            while std::time::Instant::now() < until {
                black_box(());
            }
        }
        Ok(())
    }
}

plinth_sdk::export!(Probe);

/// The kv key `/fail-events` sets.
const FAIL_EVENTS: &str = "fail-events";

fn publish(req: &Request) -> Result<Response, Error> {
    let topic = req
        .query("topic")
        .ok_or_else(|| Error::bad_request("missing query parameter `topic`"))?;
    events::publish(&topic, req.text()?)?;
    Ok(Response::text(200, "published"))
}

fn in_transaction(req: &Request) -> Result<Response, Error> {
    let topic = req
        .query("topic")
        .ok_or_else(|| Error::bad_request("missing query parameter `topic`"))?;
    let end = req.query("end").unwrap_or_else(|| "commit".to_owned());
    let payload = req.text()?;
    // `db::execute` runs in the open transaction like `tx.execute`.
    let write = || -> Result<(), Error> {
        db::execute(
            "INSERT INTO probe_events (topic, payload) VALUES ('tx', ?)",
            &[payload.into()],
        )?;
        events::publish(&topic, payload)
    };
    match end.as_str() {
        "commit" => db::transaction(|_tx| write())?,
        "rollback" => {
            let undone = db::transaction(|_tx| {
                write()?;
                Err::<(), Error>(Error::conflict("rolled back as asked"))
            });
            if undone.is_ok() {
                return Err(Error::internal("the transaction was not rolled back"));
            }
        }
        "open" => {
            // Begun and never ended: the host rolls it back after the call.
            plinth_sdk::__bindings::plinth::plugin::sql_transaction::begin()
                .map_err(|e| Error::internal(format!("{e:?}")))?;
            write()?;
        }
        other => {
            return Err(Error::bad_request(format!(
                "end={other}: give commit, rollback or open"
            )));
        }
    }
    Ok(Response::text(200, end))
}

fn fail_events(req: &Request) -> Result<Response, Error> {
    let on = req.query("on").unwrap_or_else(|| "yes".to_owned());
    kv::set(FAIL_EVENTS, &on)?;
    Ok(Response::text(200, on))
}

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

fn file_name(req: &Request) -> Result<String, Error> {
    req.query("name")
        .ok_or_else(|| Error::bad_request("missing query parameter `name`"))
}

/// `PUT /file?name=…`: writes the body through the `files` interface.
fn file_write(req: &Request) -> Result<Response, Error> {
    let stat = files::write(&file_name(req)?, req.body())?;
    Ok(Response::text(200, stat.size.to_string()))
}

/// `GET /file?name=…`: reads a file back through the `files` interface.
fn file_read(req: &Request) -> Result<Response, Error> {
    Ok(Response::bytes(
        200,
        "application/octet-stream",
        files::read(&file_name(req)?)?,
    ))
}

/// `GET /call?plugin=…&path=…`: calls `GET path` on another plugin through
/// `plugins.call` and answers with its status and body.
fn call_plugin(req: &Request) -> Result<Response, Error> {
    let plugin = req
        .query("plugin")
        .ok_or_else(|| Error::bad_request("missing query parameter `plugin`"))?;
    let path = req.query("path").unwrap_or_else(|| "/".to_owned());
    let reply = plugins::get(&plugin, &path)?;
    let content_type = reply
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map_or("application/octet-stream", |(_, value)| value.as_str())
        .to_owned();
    Ok(Response::bytes(reply.status, &content_type, reply.body))
}

/// `GET /calling-plugin`: which plugin called this one (empty from HTTP).
fn calling_plugin(req: &Request) -> Response {
    Response::text(
        200,
        req.header("x-plinth-calling-plugin").unwrap_or_default(),
    )
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
