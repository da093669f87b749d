//! `/api/auth/…`: signing in and out, who am I, and changing one's own
//! password. The session travels in an HttpOnly, `SameSite=Lax` cookie
//! (`Secure` outside dev mode); the server keeps the session row, so a
//! password change, "sign out everywhere", disabling or deleting the user
//! refuses every older session at once.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::authn::{self, ClientIp, SESSION_COOKIE};
use super::json_body::{JsonBody, object};
use super::{ApiError, AppState};
use crate::accounts::audit::{self, Event};
use crate::accounts::callers::Credential;
use crate::accounts::sign_in::{self, Client};
use crate::accounts::{HOST_PERMISSIONS, password, secret_hash};
use crate::caller::{Caller, CallerKind};
use crate::config::Mode;
use crate::db::accounts;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    login: String,
    password: String,
    /// Where to go afterwards; answered back only if it stays on this host.
    #[serde(default)]
    next: Option<String>,
}

/// The signed-in caller, as `/api/auth/me` and sign-in answer.
#[derive(Debug, Serialize)]
pub struct Me {
    id: i64,
    login: String,
    display_name: String,
    kind: &'static str,
    roles: Vec<String>,
    data_scope: String,
    super_admin: bool,
    /// Granted codes; for a super-admin, every host code (they hold all).
    permissions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

impl Me {
    fn of(caller: &Caller) -> Self {
        let super_admin = caller.permissions.is_super_admin();
        let permissions = if super_admin {
            HOST_PERMISSIONS
                .iter()
                .map(|(c, _)| (*c).to_owned())
                .collect()
        } else {
            caller
                .permissions
                .codes()
                .into_iter()
                .map(str::to_owned)
                .collect()
        };
        Me {
            id: caller.id,
            login: caller.login.clone(),
            display_name: caller.display_name.clone(),
            kind: match caller.kind {
                CallerKind::User => "user",
                CallerKind::ServiceToken => "service_token",
                CallerKind::Bootstrap => "bootstrap",
            },
            roles: caller.roles.clone(),
            data_scope: caller.data_scope.clone(),
            super_admin,
            permissions,
            next: None,
        }
    }
}

fn client_of(headers: &HeaderMap, ip: &ClientIp) -> Client {
    Client {
        ip: ip.0.clone(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    }
}

fn sign_in_failed() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "sign_in_failed",
        "wrong login or password, or the account is locked for a while; try again later or ask an administrator",
    )
}

pub fn db_error(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "accounts: internal error");
    ApiError::internal("the host could not read or write its accounts; the details are logged")
}

fn session_cookie_header(state: &AppState, secret: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.config().mode == Mode::Dev {
        ""
    } else {
        "; Secure"
    };
    let value = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `POST /api/auth/login`.
pub async fn login(
    State(state): State<AppState>,
    axum::Extension(ip): axum::Extension<ClientIp>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let client = client_of(&headers, &ip);
    if !state.sign_in_allowed(&client.ip) {
        return Ok(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_sign_ins",
            "too many sign-in attempts from this address; wait a minute and try again",
        )
        .into_response());
    }
    let body: LoginBody = object(body, r#"{"login", "password", "next"?}"#)?;
    let host = state.host()?;
    let limits = &host.config.admin.sign_in;
    let outcome = sign_in::sign_in(&host.db, limits, &body.login, &body.password, &client)
        .await
        .map_err(db_error)?;
    match outcome {
        Err(refusal) => {
            audit::record(
                &host.db,
                None,
                Some(&body.login),
                Event {
                    action: "auth.sign_in",
                    target: &body.login,
                    outcome: "refused",
                    ip: &client.ip,
                    detail: refusal.as_str(),
                },
            )
            .await;
            Err(sign_in_failed())
        }
        Ok(session) => {
            audit::record(
                &host.db,
                Some(&session.caller),
                None,
                Event {
                    action: "auth.sign_in",
                    target: &session.caller.login,
                    outcome: "ok",
                    ip: &client.ip,
                    detail: "",
                },
            )
            .await;
            let mut me = Me::of(&session.caller);
            me.next = Some(authn::safe_next(body.next.as_deref().unwrap_or("/")).to_owned());
            let max_age = (limits.session_hours as i64) * 3600;
            let mut response = Json(me).into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie_header(&state, &session.secret, max_age),
            );
            Ok(response)
        }
    }
}

/// `POST /api/auth/logout`: ends this session (always answers 204, so a
/// page can sign out without knowing whether it still was signed in).
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let host = state.host()?;
    if let Some(secret) = authn::session_cookie(&headers) {
        state.callers().forget(Credential::Session, secret);
        accounts::delete_session(&host.db, &secret_hash(secret))
            .await
            .map_err(db_error)?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie_header(&state, "", 0));
    Ok(response)
}

/// Refuses a request without a caller with the 401 the API answers.
pub fn require(caller: Option<axum::Extension<Arc<Caller>>>) -> Result<Arc<Caller>, ApiError> {
    caller.map(|axum::Extension(c)| c).ok_or_else(unauthorized)
}

pub fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "sign in (POST /api/auth/login) or send a service token as `Authorization: Bearer <token>`",
    )
}

/// `GET /api/auth/me`.
pub async fn me(caller: Option<axum::Extension<Arc<Caller>>>) -> Result<Json<Me>, ApiError> {
    Ok(Json(Me::of(require(caller)?.as_ref())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /api/auth/password`: the signed-in user changes their password.
/// Every other session of theirs ends; this one is replaced by a new one.
pub async fn change_password(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Arc<Caller>>>,
    axum::Extension(ip): axum::Extension<ClientIp>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let caller = require(caller)?;
    if caller.kind != CallerKind::User {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_a_user",
            "only a signed-in user has a password to change",
        ));
    }
    let client = client_of(&headers, &ip);
    let body: PasswordBody = object(body, r#"{"current_password", "new_password"}"#)?;
    password::check_policy(&body.new_password).map_err(ApiError::bad_request)?;
    let host = state.host()?;
    let user = accounts::user_by_id(&host.db, caller.id)
        .await
        .map_err(db_error)?
        .ok_or_else(unauthorized)?;
    if !password::verify(&body.current_password, Some(user.password_hash.clone())).await {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_password",
            "the current password is wrong",
        ));
    }
    let hash = password::hash(&body.new_password).await.map_err(db_error)?;
    accounts::set_password(&host.db, user.id, &hash)
        .await
        .map_err(db_error)?;
    host.grants.bump();
    let user = accounts::user_by_id(&host.db, caller.id)
        .await
        .map_err(db_error)?
        .ok_or_else(unauthorized)?;
    let limits = &host.config.admin.sign_in;
    let session = sign_in::open_session(&host.db, limits, &user, &client)
        .await
        .map_err(db_error)?;
    audit::record(
        &host.db,
        Some(&caller),
        None,
        Event {
            action: "user.password",
            target: &caller.login,
            outcome: "ok",
            ip: &client.ip,
            detail: "changed own password; other sessions ended",
        },
    )
    .await;
    let mut response = Json(Me::of(&session.caller)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie_header(
            &state,
            &session.secret,
            (limits.session_hours as i64) * 3600,
        ),
    );
    Ok(response)
}
