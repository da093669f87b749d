//! notify: records a notification row for every event it subscribes to
//! (`goods.stock-low` and the host's `plinth.plugin.*` lifecycle events),
//! in the delivery's transaction, so each event becomes exactly one row.
//!
//! | route | does |
//! | --- | --- |
//! | `GET /` | the notifications, newest first, as a page |
//! | `GET /api/notifications` | the same as JSON `{"columns", "rows"}` |

use plinth_sdk::{Error, Plugin, Request, Response, Router, db, html};

struct Notify;

/// Payloads longer than the column are cut, not refused: a notification
/// that says less is better than an event that can never be delivered.
const PAYLOAD_CHARS: usize = 4000;

impl Plugin for Notify {
    fn router() -> Router {
        Router::new().get("/", page).get("/api/notifications", list)
    }

    fn on_event(topic: &str, payload: &str) -> Result<(), String> {
        let payload: String = payload.chars().take(PAYLOAD_CHARS).collect();
        db::execute(
            "INSERT INTO notify_notifications (topic, payload) VALUES (?, ?)",
            &[topic.into(), payload.into()],
        )?;
        Ok(())
    }
}

plinth_sdk::export!(Notify);

fn newest() -> Result<db::Rows, Error> {
    Ok(db::query(
        "SELECT id, topic, payload FROM notify_notifications ORDER BY id DESC LIMIT 200",
        &[],
    )?)
}

fn list(_req: &Request) -> Result<Response, Error> {
    Ok(Response::json(200, &newest()?.to_json()))
}

fn page(_req: &Request) -> Result<Response, Error> {
    let rows = newest()?;
    let mut body =
        String::from("<!doctype html><title>Notifications</title><h1>Notifications</h1>");
    if rows.is_empty() {
        body.push_str("<p>No notifications yet.</p>");
    } else {
        body.push_str("<table><tr><th>#</th><th>Topic</th><th>Details</th></tr>");
        for row in rows.iter() {
            let id: i64 = row.get("id")?;
            let topic: String = row.get("topic")?;
            let payload: String = row.get("payload")?;
            body.push_str(&format!(
                "<tr><td>{id}</td><td>{}</td><td><code>{}</code></td></tr>",
                html::escape(&topic),
                html::escape(&payload)
            ));
        }
        body.push_str("</table>");
    }
    Ok(Response::html(200, body))
}
