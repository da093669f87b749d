//! A plugin as it was built for host API 0.1.0: generated straight from the
//! frozen `wit/frozen/0.1.0` contract, so it imports `plinth:plugin/…@0.1.0`
//! whatever the current WIT says. The host's compatibility test installs
//! and calls it; `GET /` answers from plugin-info and `GET /kv` round-trips
//! a value through the key-value store, so imports of the old version are
//! exercised, not only the export.

/// Generated bindings; the generated glue needs `unsafe`, this crate's own
/// code does not.
#[allow(unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/frozen/0.1.0",
        world: "plugin",
    });

    use super::LegacyHello;
    export!(LegacyHello);
}

use bindings::exports::plinth::plugin::handler::{Guest as Handler, Request, Response};
use bindings::exports::plinth::plugin::lifecycle::Guest as Lifecycle;
use bindings::plinth::plugin::{kv, log, plugin_info, types::Header};

struct LegacyHello;

fn text(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![Header {
            name: "content-type".into(),
            value: "text/plain; charset=utf-8".into(),
        }],
        body: body.into_bytes(),
    }
}

impl Handler for LegacyHello {
    fn handle(req: Request) -> Response {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/") => text(
                200,
                format!(
                    "Hello from {} {}, built for host API 0.1.0",
                    plugin_info::name(),
                    plugin_info::version()
                ),
            ),
            ("GET", "/kv") => {
                let stored = kv::set("greeting", b"still here")
                    .and_then(|()| kv::get("greeting"))
                    .map(|v| v.unwrap_or_default());
                match stored {
                    Ok(value) => text(200, String::from_utf8_lossy(&value).into_owned()),
                    Err(e) => {
                        log::log(log::Level::Error, &format!("kv failed: {e}"));
                        text(500, e)
                    }
                }
            }
            _ => text(404, "not found".into()),
        }
    }
}

impl Lifecycle for LegacyHello {
    fn install(_from: Option<String>, _to: String) -> Result<(), String> {
        Ok(())
    }

    fn run_task(name: String) -> Result<(), String> {
        Err(format!("no task named {name}"))
    }

    fn on_event(_topic: String, _payload: String) -> Result<(), String> {
        Ok(())
    }
}
