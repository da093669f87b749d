//! Package downloads, `GET /packages/{name}/{version}`.
//!
//! A customer may download exactly the package versions of deployments
//! issued to it: anything else is a 403, logged and written to the audit
//! log, since it means a misconfigured host or a token used to probe for
//! other customers' forks. The file itself is served by tower-http's
//! `ServeFile`, which handles `Range` (206 with `Content-Range`, 416 when
//! unsatisfiable), `HEAD` and conditional requests.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use semver::Version;
use tower::ServiceExt as _;
use tower_http::services::ServeFile;

use super::AppState;
use super::auth;
use super::error::ApiError;
use crate::db::deployments;

pub async fn download(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let customer = auth::customer(&state, request.headers()).await?;
    let vendor = state.vendor();
    let not_issued = || {
        ApiError::forbidden(
            "not_issued",
            format!(
                "package {name} {version} is not part of any deployment issued to customer {}; download only the packages of an offered deployment",
                customer.name
            ),
        )
    };
    let parsed = Version::parse(&version).ok();
    let issued = match &parsed {
        Some(v) => deployments::issued_to(&vendor.db, customer.id, &name, &v.to_string()).await?,
        None => false,
    };
    let Some(parsed) = parsed.filter(|_| issued) else {
        tracing::warn!(customer = %customer.name, package = %name, %version, "refused a download of a package not issued to this customer");
        deployments::audit(
            &vendor.db,
            Some(&customer.name),
            "download_refused",
            &format!("{name} {version}: not in any deployment issued to this customer"),
        )
        .await?;
        return Err(not_issued());
    };
    let Some(path) = vendor.package_file(&name, &parsed).await? else {
        return Err(ApiError::not_found(
            "package_missing",
            format!(
                "package {name} {version} was issued but is no longer published; ask the vendor to push again"
            ),
        ));
    };
    if !path.is_file() {
        tracing::error!(path = %path.display(), "a published package file is missing from the store");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "package_unavailable",
            format!("package {name} {version} is temporarily unavailable; retry later"),
        ));
    }
    let response = match ServeFile::new(&path).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let mut response = response.map(Body::new);
    if response.status().is_success() {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/zip"),
        );
    }
    Ok(response)
}
