//! ticker: tasks that fire every second, for the scheduler's tests.
//!
//! Tasks: `tick` adds a row to `ticker_ticks` and returns, `slow` sleeps
//! 2.5 s (longer than its period, so ticks overlap), `hang` sleeps a minute
//! (past its 1 s timeout). Sleeping waits on the host's clock without
//! burning CPU, so it is the wall-time limit that cuts `hang` off, not the
//! CPU budget.
//!
//! `GET /ticks` answers `{"ticks": n}`, how many times `tick` really ran.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plinth_sdk::{Error, Plugin, Request, Response, Router, db};

struct Ticker;

impl Plugin for Ticker {
    fn router() -> Router {
        Router::new().get("/ticks", ticks)
    }

    fn run_task(name: &str) -> Result<(), String> {
        match name {
            "tick" => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                db::execute(
                    &format!("INSERT INTO {} (at_ms) VALUES (?)", db::table("ticks")),
                    &[now.into()],
                )?;
                Ok(())
            }
            "slow" => {
                std::thread::sleep(Duration::from_millis(2500));
                Ok(())
            }
            "hang" => {
                std::thread::sleep(Duration::from_secs(60));
                Ok(())
            }
            other => Err(format!("unknown task: {other}")),
        }
    }
}

fn ticks(_req: &Request) -> Result<Response, Error> {
    let rows = db::query(&format!("SELECT id FROM {}", db::table("ticks")), &[])?;
    Ok(Response::json(
        200,
        &serde_json::json!({ "ticks": rows.len() }),
    ))
}

plinth_sdk::export!(Ticker);
