//! Integration tests of `plinth-vendor`, one module per capability. Every
//! test runs against SQLite and, when reachable (always in CI), against a
//! fresh PostgreSQL database; servers run in-process on 127.0.0.1 and are
//! reached over real sockets.

#![allow(clippy::unwrap_used)]

mod agent_socket;
mod cli;
mod downloads;
mod openapi_document;
mod plans;
mod status_page;
mod support;
