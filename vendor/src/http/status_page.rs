//! The status page (`GET /`, plain HTML with every value escaped), the
//! same data as JSON (`GET /api/status`) and `GET /healthz`: customers,
//! their assignments, what their agents reported as installed, whether
//! they are connected, and their newest deployments with outcome and each
//! package's last state and failure reason.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use crate::db::overview::{self, CustomerOverview, Overview};

pub async fn json(State(state): State<AppState>) -> Result<Json<Overview>, ApiError> {
    Ok(Json(overview::load(&state.vendor().db, None).await?))
}

pub async fn html(State(state): State<AppState>) -> Result<Html<String>, ApiError> {
    let overview = overview::load(&state.vendor().db, None).await?;
    Ok(Html(render(&overview)))
}

/// 200 while the database answers; otherwise 503, which a load balancer
/// or monitor reads as "take this instance out", not as a bug in it.
pub async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if let Err(error) = state.vendor().db.ping().await {
        tracing::error!(%error, "health check: the database does not answer");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the vendor's database does not answer; the vendor's log has the cause",
        ));
    }
    Ok(Json(json!({
        "status": "ok",
        "connections": state.registry().len(),
    })))
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

fn time_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn time_secs(secs: i64) -> String {
    time_ms(secs.saturating_mul(1000))
}

/// The whole page.
pub fn render(overview: &Overview) -> String {
    let connected = overview
        .customers
        .iter()
        .filter(|c| c.agent.as_ref().is_some_and(|a| a.connected))
        .count();
    let mut page = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Plinth vendor status</title><style>\
         body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;width:100%}\
         th,td{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;text-align:left}\
         .ok{color:#070}.bad{color:#b00}.muted{color:#777}ul{margin:0;padding-left:1.1em}\
         </style></head><body>\n<h1>Plinth vendor status</h1>\n",
    );
    let _ = writeln!(
        page,
        "<p>{} customers, {} connected.</p>",
        overview.customers.len(),
        connected
    );
    page.push_str(
        "<table><thead><tr><th>Customer</th><th>Agent</th><th>Assigned</th>\
         <th>Installed (reported)</th><th>Last deployments</th></tr></thead><tbody>\n",
    );
    for customer in &overview.customers {
        render_customer(&mut page, customer);
    }
    page.push_str("</tbody></table>\n</body></html>\n");
    page
}

fn render_customer(page: &mut String, c: &CustomerOverview) {
    let _ = write!(page, "<tr><td>{}</td><td>", escape(&c.name));
    match &c.agent {
        Some(agent) if agent.connected => {
            let _ = write!(
                page,
                "<span class=\"ok\">connected</span><br>agent {}",
                escape(&agent.agent_version)
            );
        }
        Some(agent) => {
            let _ = write!(
                page,
                "<span class=\"muted\">disconnected</span><br>last seen {}",
                escape(&time_ms(agent.last_seen_ms))
            );
        }
        None => page.push_str("<span class=\"muted\">never connected</span>"),
    }
    page.push_str("</td><td>");
    list(
        page,
        c.assignments
            .iter()
            .map(|a| format!("{} {}", escape(&a.plugin), escape(&a.range))),
    );
    page.push_str("</td><td>");
    match &c.agent {
        Some(agent) => list(
            page,
            agent.installed.iter().map(|p| {
                let disabled = if p.enabled { "" } else { " (disabled)" };
                format!(
                    "{} {}{}",
                    escape(&p.name),
                    escape(&p.version.to_string()),
                    disabled
                )
            }),
        ),
        None => page.push_str("<span class=\"muted\">unknown</span>"),
    }
    page.push_str("</td><td>");
    if c.deployments.is_empty() {
        page.push_str("<span class=\"muted\">none</span>");
    }
    for d in &c.deployments {
        let class = match d.outcome.as_str() {
            "success" => "ok",
            "failure" => "bad",
            _ => "muted",
        };
        let _ = write!(
            page,
            "<div><b>{}</b> issued {}: <span class=\"{class}\">{}</span>",
            escape(&d.id),
            escape(&time_secs(d.issued_at)),
            escape(&d.outcome)
        );
        if let Some(reason) = &d.outcome_reason {
            let _ = write!(page, " ({})", escape(reason));
        }
        list(
            page,
            d.packages.iter().map(|p| {
                let mut item = format!("{} {}", escape(&p.name), escape(&p.version));
                if let Some(state) = &p.state {
                    let _ = write!(item, ": {}", escape(state));
                }
                if let Some(reason) = &p.reason {
                    let _ = write!(item, " ({})", escape(reason));
                }
                item
            }),
        );
        page.push_str("</div>");
    }
    page.push_str("</td></tr>\n");
}

/// A `<ul>` of already escaped items, or "none".
fn list(page: &mut String, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        page.push_str("<span class=\"muted\">none</span>");
        return;
    }
    page.push_str("<ul>");
    for item in items {
        let _ = write!(page, "<li>{item}</li>");
    }
    page.push_str("</ul>");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::db::overview::{AssignmentOverview, DeploymentOverview, PackageOverview};

    #[test]
    fn everything_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let overview = Overview {
            customers: vec![CustomerOverview {
                name: "acme".into(),
                assignments: vec![AssignmentOverview {
                    plugin: "goods".into(),
                    range: ">=1.0, <2".into(),
                }],
                agent: None,
                deployments: vec![DeploymentOverview {
                    id: "d1".into(),
                    issued_at: 0,
                    expires_at: 1,
                    outcome: "failure".into(),
                    outcome_reason: Some("<script>alert(1)</script>".into()),
                    packages: vec![PackageOverview {
                        name: "goods".into(),
                        version: "1.0.0".into(),
                        state: Some("failure".into()),
                        reason: Some("disk <full>".into()),
                    }],
                }],
            }],
        };
        let page = render(&overview);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("goods &gt;=1.0, &lt;2"));
        assert!(page.contains("disk &lt;full&gt;"));
        assert!(page.contains("never connected"));
    }
}
