//! Exchange rates from an allowed outbound host: `GET /` fetches the JSON
//! document at the `source_url` setting and serves it; `GET /fetch?url=…`
//! fetches any URL the caller names, so the host's allow-list, not this
//! code, decides what is reachable (the tests use it to prove refusals).
//! A refused or failed call answers 502 (504 on a time-out) with the host's
//! message.

use plinth_sdk::{Error, Plugin, Request, Response, Router, http, settings};

const DEFAULT_SOURCE: &str = "https://api.frankfurter.app/latest";

struct Rates;

impl Plugin for Rates {
    fn router() -> Router {
        Router::new().get("/", latest).get("/fetch", fetch)
    }
}

fn latest(_req: &Request) -> Result<Response, Error> {
    let source = settings::get("source_url").unwrap_or_else(|| DEFAULT_SOURCE.to_owned());
    let upstream = http::get(&source)?;
    if upstream.status() != 200 {
        return Err(Error::new(
            502,
            format!("the rates source answered {}", upstream.status()),
        ));
    }
    let rates: serde_json::Value = upstream.json()?;
    Ok(Response::json(200, &serde_json::json!({ "rates": rates })))
}

fn fetch(req: &Request) -> Result<Response, Error> {
    let url = req
        .query("url")
        .ok_or_else(|| Error::bad_request("give the URL to fetch as ?url="))?;
    let upstream = http::Request::get(&url).timeout_ms(5_000).send()?;
    Ok(Response::json(
        200,
        &serde_json::json!({ "status": upstream.status(), "bytes": upstream.bytes().len() }),
    ))
}

plinth_sdk::export!(Rates);
