//! Dispatching requests to handlers by method and path pattern.
//!
//! A pattern is a path whose segments are literals, `:name` parameters (one
//! segment each) or, as the last segment only, a `*name` wildcard that takes
//! the rest of the path (possibly nothing). Empty segments are ignored, so
//! `/api/items` and `/api/items/` are the same path.
//!
//! When several routes match, the most specific wins: segment by segment a
//! literal beats a parameter, which beats the wildcard; among equals the one
//! added first wins. No match answers 404 `{"error":"not found"}`; a path
//! that matches only routes of other methods answers 405 with an `allow`
//! header. `HEAD` falls back to the `GET` route without the body.

use crate::request::percent_decode;
use crate::{IntoResponse, Request, Response};

type Handler = Box<dyn Fn(&Request) -> Response + Send + Sync>;

/// Maps method + path pattern to handlers.
///
/// ```
/// use plinth_sdk::{Request, Response, Router};
///
/// fn show(req: &Request) -> Response {
///     Response::text(200, format!("item {}", req.param("id").unwrap_or("?")))
/// }
///
/// let router = Router::new()
///     .get("/", |_req: &Request| "home")
///     .get("/api/items/:id", show)
///     .get("/files/*rest", |req: &Request| req.param("rest").unwrap_or("").to_owned());
///
/// let r = router.handle(&mut Request::new("GET", "/api/items/42"));
/// assert_eq!(r.body(), b"item 42");
/// let r = router.handle(&mut Request::new("GET", "/files/a/b.txt"));
/// assert_eq!(r.body(), b"a/b.txt");
/// assert_eq!(router.handle(&mut Request::new("POST", "/")).status(), 405);
/// assert_eq!(router.handle(&mut Request::new("GET", "/nope")).status(), 404);
/// ```
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
    after: Option<Box<dyn Fn(Response) -> Response + Send + Sync>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|r| format!("{} {}", r.method, r.pattern))
            .collect();
        f.debug_struct("Router").field("routes", &routes).finish()
    }
}

struct Route {
    method: String,
    pattern: String,
    segments: Vec<Segment>,
    handler: Handler,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Rest(String),
}

impl Segment {
    /// Higher is more specific.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 2,
            Segment::Param(_) => 1,
            Segment::Rest(_) => 0,
        }
    }
}

impl Router {
    /// An empty router: everything is 404.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route for `method` (any case) and `pattern`.
    ///
    /// # Panics
    ///
    /// When a `*wildcard` is not the last segment or a `:`/`*` has no name:
    /// a bug in the plugin, caught on its first request.
    pub fn route<F, R>(mut self, method: &str, pattern: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> R + Send + Sync + 'static,
        R: IntoResponse,
    {
        let segments = parse_pattern(pattern);
        self.routes.push(Route {
            method: method.to_ascii_uppercase(),
            pattern: pattern.to_owned(),
            segments,
            handler: Box::new(move |req| handler(req).into_response()),
        });
        self
    }

    /// Adds a `GET` route.
    pub fn get<F, R>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> R + Send + Sync + 'static,
        R: IntoResponse,
    {
        self.route("GET", pattern, handler)
    }

    /// Adds a `POST` route.
    pub fn post<F, R>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> R + Send + Sync + 'static,
        R: IntoResponse,
    {
        self.route("POST", pattern, handler)
    }

    /// Adds a `PUT` route.
    pub fn put<F, R>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> R + Send + Sync + 'static,
        R: IntoResponse,
    {
        self.route("PUT", pattern, handler)
    }

    /// Adds a `PATCH` route.
    pub fn patch<F, R>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> R + Send + Sync + 'static,
        R: IntoResponse,
    {
        self.route("PATCH", pattern, handler)
    }

    /// Adds a `DELETE` route.
    pub fn delete<F, R>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> R + Send + Sync + 'static,
        R: IntoResponse,
    {
        self.route("DELETE", pattern, handler)
    }

    /// Passes every response, including 404 and 405, through `f` before it
    /// is sent; e.g. to add a header to all of them. A second call replaces
    /// the first.
    pub fn map_response<F>(mut self, f: F) -> Self
    where
        F: Fn(Response) -> Response + Send + Sync + 'static,
    {
        self.after = Some(Box::new(f));
        self
    }

    /// Dispatches `req`: sets its path parameters and runs the matching
    /// handler, or answers 404/405.
    pub fn handle(&self, req: &mut Request) -> Response {
        let response = self.dispatch(req);
        match &self.after {
            Some(after) => after(response),
            None => response,
        }
    }

    fn dispatch(&self, req: &mut Request) -> Response {
        let path: Vec<&str> = req.path().split('/').filter(|s| !s.is_empty()).collect();
        let method = req.method();
        let is_head = method == "HEAD";

        let mut best: Option<(&Route, Vec<u8>)> = None;
        let mut best_get: Option<(&Route, Vec<u8>)> = None;
        let mut allowed: Vec<&str> = Vec::new();
        for route in &self.routes {
            let Some(rank) = matches(&route.segments, &path) else {
                continue;
            };
            if route.method == method {
                if best.as_ref().is_none_or(|(_, r)| rank > *r) {
                    best = Some((route, rank));
                }
            } else if is_head && route.method == "GET" {
                if best_get.as_ref().is_none_or(|(_, r)| rank > *r) {
                    best_get = Some((route, rank));
                }
            } else if !allowed.contains(&route.method.as_str()) {
                allowed.push(&route.method);
            }
        }

        let (route, head_only) = match (best, best_get) {
            (Some((route, _)), _) => (route, false),
            (None, Some((route, _))) => (route, true),
            (None, None) if allowed.is_empty() => return Response::error(404, "not found"),
            (None, None) => {
                return Response::error(405, "method not allowed")
                    .with_header("allow", &allowed.join(", "));
            }
        };
        req.set_params(capture(&route.segments, &path));
        let response = (route.handler)(req);
        if head_only {
            response.without_body()
        } else {
            response
        }
    }
}

fn parse_pattern(pattern: &str) -> Vec<Segment> {
    let parts: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let last = parts.len().saturating_sub(1);
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            if let Some(name) = part.strip_prefix(':') {
                assert!(!name.is_empty(), "route {pattern:?}: `:` needs a name");
                Segment::Param(name.to_owned())
            } else if let Some(name) = part.strip_prefix('*') {
                assert!(!name.is_empty(), "route {pattern:?}: `*` needs a name");
                assert!(
                    i == last,
                    "route {pattern:?}: `*{name}` must be the last segment"
                );
                Segment::Rest(name.to_owned())
            } else {
                Segment::Literal((*part).to_owned())
            }
        })
        .collect()
}

/// The route's specificity when `segments` match `path`, else `None`.
fn matches(segments: &[Segment], path: &[&str]) -> Option<Vec<u8>> {
    let mut rank = Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        match seg {
            Segment::Rest(_) => {
                rank.push(seg.rank());
                return Some(rank);
            }
            Segment::Literal(lit) => {
                if path.get(i)? != lit {
                    return None;
                }
            }
            Segment::Param(_) => {
                path.get(i)?;
            }
        }
        rank.push(seg.rank());
    }
    (segments.len() == path.len()).then_some(rank)
}

fn capture(segments: &[Segment], path: &[&str]) -> Vec<(String, String)> {
    let mut params = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        match seg {
            Segment::Param(name) => params.push((name.clone(), percent_decode(path[i], false))),
            Segment::Rest(name) => {
                let rest = path[i..]
                    .iter()
                    .map(|s| percent_decode(s, false))
                    .collect::<Vec<_>>()
                    .join("/");
                params.push((name.clone(), rest));
            }
            Segment::Literal(_) => {}
        }
    }
    params
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    fn echo(name: &'static str) -> impl Fn(&Request) -> Response + Send + Sync {
        move |req: &Request| {
            let params: Vec<String> = ["id", "rest", "x"]
                .iter()
                .filter_map(|p| req.param(p).map(|v| format!("{p}={v}")))
                .collect();
            Response::text(
                200,
                format!("{name} {}", params.join(" ")).trim_end().to_owned(),
            )
        }
    }

    fn body(r: &Response) -> &str {
        std::str::from_utf8(r.body()).unwrap()
    }

    fn router() -> Router {
        Router::new()
            .get("/", echo("root"))
            .get("/api/items", echo("list"))
            .post("/api/items", echo("create"))
            .get("/api/items/:id", echo("show"))
            .put("/api/items/:id", echo("update"))
            .delete("/api/items/:id", echo("delete"))
            .get("/api/items/search", echo("search"))
            .post("/api/items/:id/stock", echo("stock"))
            .get("/static/*rest", echo("static"))
            .get("/:x/*rest", echo("catchall"))
    }

    fn call(r: &Router, method: &str, path: &str) -> Response {
        r.handle(&mut Request::new(method, path))
    }

    #[test]
    fn literal_and_params() {
        let r = router();
        assert_eq!(body(&call(&r, "GET", "/")), "root");
        assert_eq!(body(&call(&r, "GET", "")), "root");
        assert_eq!(body(&call(&r, "GET", "/api/items")), "list");
        assert_eq!(body(&call(&r, "GET", "/api/items/")), "list");
        assert_eq!(body(&call(&r, "POST", "/api/items")), "create");
        assert_eq!(body(&call(&r, "GET", "/api/items/7")), "show id=7");
        assert_eq!(body(&call(&r, "put", "/api/items/7")), "update id=7");
        assert_eq!(body(&call(&r, "DELETE", "/api/items/7")), "delete id=7");
        assert_eq!(body(&call(&r, "POST", "/api/items/7/stock")), "stock id=7");
        assert_eq!(body(&call(&r, "GET", "/api/items/a%20b")), "show id=a b");
    }

    #[test]
    fn most_specific_wins() {
        let r = router();
        // A literal beats `:id` even though `:id` was added first.
        assert_eq!(body(&call(&r, "GET", "/api/items/search")), "search");
        // `/static/*rest` beats `/:x/*rest` by its literal first segment.
        assert_eq!(
            body(&call(&r, "GET", "/static/css/a.css")),
            "static rest=css/a.css"
        );
        assert_eq!(
            body(&call(&r, "GET", "/other/a/b")),
            "catchall rest=a/b x=other"
        );
    }

    #[test]
    fn wildcard_may_be_empty() {
        let r = router();
        assert_eq!(body(&call(&r, "GET", "/static")), "static rest=");
        assert_eq!(body(&call(&r, "GET", "/static/")), "static rest=");
    }

    #[test]
    fn not_found_and_method_not_allowed() {
        let r = router();
        let nf = call(&r, "POST", "/nothing/here/at/all/x");
        // `/:x/*rest` matches the path with GET, so this is a 405.
        assert_eq!(nf.status(), 405);
        let r = Router::new()
            .get("/api/items/:id", echo("show"))
            .delete("/api/items/:id", echo("d"));
        let nf = call(&r, "GET", "/api/other");
        assert_eq!(nf.status(), 404);
        assert_eq!(nf.body(), br#"{"error":"not found"}"#);
        let na = call(&r, "POST", "/api/items/1");
        assert_eq!(na.status(), 405);
        assert_eq!(na.header("allow"), Some("GET, DELETE"));
        assert_eq!(call(&r, "GET", "/api/items/1/extra").status(), 404);
        assert_eq!(call(&r, "GET", "/api/items").status(), 404);
    }

    #[test]
    fn head_falls_back_to_get() {
        let r = router();
        let h = call(&r, "HEAD", "/api/items/3");
        assert_eq!(h.status(), 200);
        assert!(h.body().is_empty());
        assert_eq!(h.header("content-type"), Some("text/plain; charset=utf-8"));
    }

    #[test]
    fn map_response_sees_everything() {
        let r = Router::new()
            .get("/", echo("root"))
            .map_response(|r| r.with_header("x-plugin-version", "1.0.0"));
        assert_eq!(
            call(&r, "GET", "/").header("x-plugin-version"),
            Some("1.0.0")
        );
        assert_eq!(
            call(&r, "GET", "/x").header("x-plugin-version"),
            Some("1.0.0")
        );
    }

    #[test]
    fn result_handlers() {
        use crate::Error;
        let r = Router::new().get("/n/:id", |req: &Request| -> Result<Response, Error> {
            let id: i64 = req.param_parse("id")?;
            Ok(Response::text(200, id.to_string()))
        });
        assert_eq!(body(&call(&r, "GET", "/n/12")), "12");
        assert_eq!(call(&r, "GET", "/n/abc").status(), 400);
    }

    #[test]
    #[should_panic(expected = "must be the last segment")]
    fn wildcard_must_be_last() {
        let _ = Router::new().get("/a/*rest/b", echo("x"));
    }
}
