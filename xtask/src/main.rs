//! Project tasks: `cargo xtask <command>` (the alias is in
//! `.cargo/config.toml`).
//!
//! Commands are matched by hand to keep xtask light; add one by adding a
//! module and an arm to [`COMMANDS`] and the `match` in `main`.

use std::process::ExitCode;

mod bench;
mod bench_events;
mod bench_outbound;
mod build_plugins;
mod demo;
mod fanout;
mod hang_watch;
mod openapi_check;
mod test_cmd;
mod util;
mod vendor_cli;

/// `(name, one-line summary)` for `cargo xtask help`.
const COMMANDS: &[(&str, &str)] = &[
    (
        "build-plugins",
        "build the example plugins for wasm32-wasip2 and lay out target/plugins/",
    ),
    (
        "demo",
        "run the vendor server and a host that gets the example plugins by push; print the URLs",
    ),
    (
        "test",
        "build the plugins and run every test (what CI runs)",
    ),
    (
        "bench-fanout",
        "one vendor server, N simulated agents (default 1000 and 10000): memory and push fan-out time",
    ),
    (
        "openapi-check",
        "run schemathesis --checks all against a real host and vendor and their /api/openapi.json (under 2 minutes)",
    ),
    (
        "bench-events",
        "the event bus end to end on SQLite and PostgreSQL beside raw sqlx insert+delete; writes docs/BENCHMARKS.md",
    ),
    (
        "bench",
        "measure plugin routes against native axum and wasmtime serve; writes docs/BENCHMARKS.md",
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match command {
        "build-plugins" => build_plugins::run(rest),
        "demo" => demo::run(rest),
        "test" => test_cmd::run(rest),
        "bench" => bench::run(rest),
        "openapi-check" => openapi_check::run(rest),
        "bench-fanout" => fanout::run(rest),
        "bench-events" => bench_events::run(rest),
        "help" | "-h" | "--help" => {
            print_help();
            Ok(())
        }
        other => {
            print_help();
            Err(anyhow::anyhow!("unknown command `{other}`"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {command}: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    eprintln!("usage: cargo xtask <command> [args]\n\ncommands:");
    for (name, summary) in COMMANDS {
        eprintln!("  {name:<16} {summary}");
    }
}
