//! `/api/admin/users|roles|permissions|tokens|audit`: managing who may do
//! what. Every
//! change bumps the grants generation, so cached callers are rebuilt on
//! their next request (a disabled user or a revoked token is refused at
//! once). The gate in `admin.rs` checks the permission and audits the call;
//! the handlers then keep a delegated administrator within their own reach
//! ([`accounts::delegation`]): they give, take away or act on only what
//! they hold. Signing a user out, unlocking and revoking a token stay open
//! to every holder of the page's permission, for an incident's sake.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::auth::db_error;
use super::json_body::{JsonBody, object};
use super::{ApiError, AppState};
use crate::accounts::delegation::{self, Beyond};
use crate::accounts::{self, SUPER_ADMIN_ROLE, new_secret, password, secret_hash};
use crate::caller::Caller;
use crate::db::accounts as store;
use crate::db::accounts::{AuditEntry, AuditFilter, RoleGrant, RoleRow, ServiceTokenRow, UserRow};
use crate::db::plugin_grants;
use crate::registry::LoadedPlugin;

/// A user as the admin API shows it (never the password hash).
#[derive(Debug, Serialize)]
pub struct UserView {
    id: i64,
    login: String,
    display_name: String,
    disabled: bool,
    locked_until: i64,
    roles: Vec<String>,
    created_at: i64,
    updated_at: i64,
    /// The last successful sign-in (ms), 0 when never.
    last_sign_in_at: i64,
}

async fn view(state: &AppState, user: UserRow) -> Result<UserView, ApiError> {
    let host = state.host()?;
    let last = store::last_sign_ins(&host.db, Some(&user.login))
        .await
        .map_err(db_error)?;
    view_with(state, user, &last).await
}

/// A user's view given the last sign-ins already read (one query for a
/// whole listing).
async fn view_with(
    state: &AppState,
    user: UserRow,
    last_sign_ins: &std::collections::HashMap<String, i64>,
) -> Result<UserView, ApiError> {
    let host = state.host()?;
    let last_sign_in_at = last_sign_ins.get(&user.login).copied().unwrap_or(0);
    let roles = store::user_roles(&host.db, user.id)
        .await
        .map_err(db_error)?;
    Ok(UserView {
        id: user.id,
        login: user.login,
        display_name: user.display_name,
        disabled: user.disabled,
        locked_until: user.locked_until,
        roles,
        created_at: user.created_at,
        updated_at: user.updated_at,
        last_sign_in_at,
    })
}

async fn find_user(state: &AppState, login: &str) -> Result<UserRow, ApiError> {
    let host = state.host()?;
    store::user_by_login(&host.db, login)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::not_found(format!("there is no user {login:?}")))
}

async fn find_role(state: &AppState, name: &str) -> Result<RoleRow, ApiError> {
    let host = state.host()?;
    store::role(&host.db, name)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::not_found(format!("there is no role {name:?}")))
}

/// Logins, role names and token names: 1 to 64 of `a-z 0-9 . _ -`.
/// The signed-in caller (the gate let only callers through).
type CallerExt = Option<Extension<Arc<Caller>>>;

/// Refuses `caller` doing `action` on what holds the built-in role
/// (`builtin`) or `codes` (`what`, when it is a user or a role), beyond the
/// caller's own reach.
fn within_reach(
    caller: &Caller,
    builtin: bool,
    codes: &[String],
    what: Option<&str>,
    action: &str,
) -> Result<(), ApiError> {
    delegation::within_reach(&caller.permissions, builtin, codes).map_err(|beyond| {
        let login = &caller.login;
        let message = match (beyond, what) {
            (Beyond::BuiltinRole, Some(what)) => {
                format!("{what} is the super-admin's; only a super-admin may {action}")
            }
            (Beyond::BuiltinRole, None) => format!("only a super-admin may {action}"),
            (Beyond::Code(code), Some(what)) => format!(
                "{what} holds {code}, which {login} does not hold; only someone who holds it may {action}"
            ),
            (Beyond::Code(code), None) => format!(
                "{login} does not hold {code}; only someone who holds it may {action}"
            ),
        };
        ApiError::new(StatusCode::FORBIDDEN, "beyond_your_permissions", message)
    })
}

/// `caller` may give or take away `role` only if they hold all it grants.
async fn role_within_reach(
    state: &AppState,
    caller: &Caller,
    role: &RoleRow,
    action: &str,
) -> Result<(), ApiError> {
    let host = state.host()?;
    let codes = plugin_grants::role_codes(&host.db, &role.name)
        .await
        .map_err(db_error)?;
    within_reach(
        caller,
        role.builtin,
        &codes,
        Some(&format!("the role {}", role.name)),
        action,
    )
}

/// `caller` may change `user` only if they hold all the user holds: a
/// new password would otherwise let them sign in as someone above them.
async fn user_within_reach(
    state: &AppState,
    caller: &Caller,
    user: &UserRow,
) -> Result<(), ApiError> {
    let host = state.host()?;
    let effect = store::effect_of_user_roles(&host.db, user.id)
        .await
        .map_err(db_error)?;
    within_reach(
        caller,
        effect.builtin,
        &effect.codes,
        Some(&format!("the user {}", user.login)),
        "change that user",
    )
}

fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{what} {name:?} must be 1 to 64 characters of a-z, 0-9, '.', '_', '-' or '@'"
        )))
    }
}

pub async fn list_users(State(state): State<AppState>) -> Result<Json<Vec<UserView>>, ApiError> {
    let host = state.host()?;
    let last = store::last_sign_ins(&host.db, None)
        .await
        .map_err(db_error)?;
    let mut out = Vec::new();
    for user in store::users(&host.db).await.map_err(db_error)? {
        out.push(view_with(&state, user, &last).await?);
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    login: String,
    #[serde(default)]
    display_name: Option<String>,
    password: String,
    #[serde(default)]
    roles: Vec<String>,
}

pub async fn create_user(
    State(state): State<AppState>,
    caller: CallerExt,
    body: JsonBody,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let caller = super::auth::require(caller)?;
    let body: NewUser = object(
        body,
        r#"{"login", "password", "display_name"?, "roles"?: [..]}"#,
    )?;
    check_name("login", &body.login)?;
    password::check_policy(&body.password).map_err(ApiError::bad_request)?;
    let host = state.host()?;
    for role in &body.roles {
        let role = find_role(&state, role).await?;
        role_within_reach(&state, &caller, &role, "give that role").await?;
    }
    let hash = password::hash(&body.password).await.map_err(db_error)?;
    let display = body.display_name.as_deref().unwrap_or(&body.login);
    let user = store::insert_user(&host.db, &body.login, display, &hash)
        .await
        .map_err(db_error)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("the login {:?} is taken", body.login),
            )
        })?;
    for role in &body.roles {
        store::add_user_role(&host.db, user.id, role)
            .await
            .map_err(db_error)?;
    }
    host.grants.bump();
    Ok((StatusCode::CREATED, Json(view(&state, user).await?)))
}

pub async fn get_user(
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let user = find_user(&state, &login).await?;
    Ok(Json(view(&state, user).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// Changes a user; a new password or disabling ends their sessions.
pub async fn update_user(
    State(state): State<AppState>,
    caller: CallerExt,
    Path(login): Path<String>,
    body: JsonBody,
) -> Result<Json<UserView>, ApiError> {
    let caller = super::auth::require(caller)?;
    let body: UserChange = object(body, r#"{"display_name"?, "password"?, "disabled"?}"#)?;
    let user = find_user(&state, &login).await?;
    user_within_reach(&state, &caller, &user).await?;
    let host = state.host()?;
    if let Some(password) = &body.password {
        password::check_policy(password).map_err(ApiError::bad_request)?;
        let hash = password::hash(password).await.map_err(db_error)?;
        store::set_password(&host.db, user.id, &hash)
            .await
            .map_err(db_error)?;
    }
    if let Some(name) = &body.display_name {
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(ApiError::bad_request(
                "display_name must be 1 to 200 characters",
            ));
        }
        store::set_display_name(&host.db, user.id, name)
            .await
            .map_err(db_error)?;
    }
    if let Some(disabled) = body.disabled {
        store::set_disabled(&host.db, user.id, disabled)
            .await
            .map_err(db_error)?;
    }
    host.grants.bump();
    Ok(Json(view(&state, find_user(&state, &login).await?).await?))
}

pub async fn delete_user(
    State(state): State<AppState>,
    caller: CallerExt,
    Path(login): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = super::auth::require(caller)?;
    let user = find_user(&state, &login).await?;
    user_within_reach(&state, &caller, &user).await?;
    let host = state.host()?;
    store::delete_user(&host.db, user.id)
        .await
        .map_err(db_error)?;
    host.grants.bump();
    Ok(StatusCode::NO_CONTENT)
}

/// "Sign out everywhere": every session of the user ends.
pub async fn sign_out_user(
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = find_user(&state, &login).await?;
    let host = state.host()?;
    store::bump_token_version(&host.db, user.id)
        .await
        .map_err(db_error)?;
    host.grants.bump();
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a lock-out after too many failed sign-ins and starts the count
/// afresh: the password stays, so the user signs in with it at once.
pub async fn unlock_user(
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let user = find_user(&state, &login).await?;
    let host = state.host()?;
    store::reset_failures(&host.db, user.id)
        .await
        .map_err(db_error)?;
    Ok(Json(view(&state, find_user(&state, &login).await?).await?))
}

pub async fn add_user_role(
    State(state): State<AppState>,
    caller: CallerExt,
    Path((login, role)): Path<(String, String)>,
) -> Result<Json<UserView>, ApiError> {
    let caller = super::auth::require(caller)?;
    let user = find_user(&state, &login).await?;
    let found = find_role(&state, &role).await?;
    role_within_reach(&state, &caller, &found, "give that role").await?;
    let host = state.host()?;
    store::add_user_role(&host.db, user.id, &role)
        .await
        .map_err(db_error)?;
    host.grants.bump();
    Ok(Json(view(&state, user).await?))
}

pub async fn remove_user_role(
    State(state): State<AppState>,
    caller: CallerExt,
    Path((login, role)): Path<(String, String)>,
) -> Result<Json<UserView>, ApiError> {
    let caller = super::auth::require(caller)?;
    let user = find_user(&state, &login).await?;
    let host = state.host()?;
    if let Some(found) = store::role(&host.db, &role).await.map_err(db_error)? {
        role_within_reach(&state, &caller, &found, "take that role away").await?;
    }
    store::remove_user_role(&host.db, user.id, &role)
        .await
        .map_err(db_error)?;
    host.grants.bump();
    Ok(Json(view(&state, user).await?))
}

pub async fn list_roles(State(state): State<AppState>) -> Result<Json<Vec<RoleRow>>, ApiError> {
    let host = state.host()?;
    Ok(Json(store::roles(&host.db).await.map_err(db_error)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    name: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    data_scope: Option<String>,
}

const DATA_SCOPES: &[&str] = &["all", "department", "self", "custom"];

pub async fn create_role(
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<(StatusCode, Json<RoleRow>), ApiError> {
    let body: NewRole = object(body, r#"{"name", "title"?, "data_scope"?}"#)?;
    check_name("role name", &body.name)?;
    let scope = body.data_scope.as_deref().unwrap_or("self");
    if !DATA_SCOPES.contains(&scope) {
        return Err(ApiError::bad_request(format!(
            "data_scope {scope:?} must be one of all, department, self, custom"
        )));
    }
    let title = body.title.as_deref().unwrap_or(&body.name);
    if title.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "title must be at most 200 characters",
        ));
    }
    let host = state.host()?;
    if !store::insert_role(&host.db, &body.name, title, scope, false)
        .await
        .map_err(db_error)?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("the role {:?} exists", body.name),
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(find_role(&state, &body.name).await?),
    ))
}

pub async fn delete_role(
    State(state): State<AppState>,
    caller: CallerExt,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = super::auth::require(caller)?;
    let role = find_role(&state, &name).await?;
    if role.builtin {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "builtin_role",
            format!("the built-in role {name:?} cannot be deleted"),
        ));
    }
    role_within_reach(&state, &caller, &role, "delete that role").await?;
    let host = state.host()?;
    store::delete_role(&host.db, &name)
        .await
        .map_err(db_error)?;
    host.grants.bump();
    Ok(StatusCode::NO_CONTENT)
}

pub async fn role_grants(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<RoleGrant>>, ApiError> {
    find_role(&state, &name).await?;
    let host = state.host()?;
    Ok(Json(
        store::role_grants(&host.db, &name)
            .await
            .map_err(db_error)?,
    ))
}

/// Grants a host code (`plugins.install`, …) or a code a serving plugin
/// declares (a permission or a button) to a role. A plugin's declared
/// defaults are granted on install besides.
pub async fn grant(
    State(state): State<AppState>,
    caller: CallerExt,
    Path((name, permission)): Path<(String, String)>,
) -> Result<Json<Vec<RoleGrant>>, ApiError> {
    let caller = super::auth::require(caller)?;
    let role = find_role(&state, &name).await?;
    if role.name == SUPER_ADMIN_ROLE {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "builtin_role",
            "the super-admin role holds every permission already",
        ));
    }
    let host = state.host()?;
    // A host code, or a permission or button code a serving plugin
    // declares: the grant records which plugin, so the plugin's upgrade or
    // removal drops it with the code.
    let declared_by = declaring_plugin(&host.registry.all(), &permission);
    let plugin = match (accounts::is_host_permission(&permission), declared_by) {
        (true, _) => String::new(),
        (false, Some(plugin)) => plugin,
        (false, None) => {
            return Err(ApiError::bad_request(format!(
                "{permission:?} is neither a host permission (known: {}) nor a code a serving plugin declares",
                accounts::HOST_PERMISSIONS
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    within_reach(
        &caller,
        false,
        std::slice::from_ref(&permission),
        None,
        "grant it",
    )?;
    store::grant(&host.db, &name, &permission, &plugin)
        .await
        .map_err(db_error)?;
    host.grants.bump();
    Ok(Json(
        store::role_grants(&host.db, &name)
            .await
            .map_err(db_error)?,
    ))
}

/// The serving plugin among `plugins` that declares `code` as a
/// permission or a button: what [`grant`] accepts and [`permissions`]
/// lists, from the same manifests.
fn declaring_plugin(plugins: &[Arc<LoadedPlugin>], code: &str) -> Option<String> {
    plugins
        .iter()
        .find(|p| {
            p.manifest.permissions.iter().any(|d| d.code == code)
                || p.manifest.buttons.iter().any(|b| b.code == code)
        })
        .map(|p| p.name().to_owned())
}

/// A grantable code with what it is for.
#[derive(Debug, Serialize)]
pub struct CodeView {
    code: String,
    title: String,
}

/// A plugin's API permission with the routes that need it.
#[derive(Debug, Serialize)]
pub struct ApiPermissionView {
    code: String,
    title: String,
    /// `METHOD /path` below the plugin's mount point.
    routes: Vec<String>,
}

/// What one serving plugin declares, for the roles page's tree: its
/// menus, the buttons on them and its API permissions.
#[derive(Debug, Serialize)]
pub struct PluginCodes {
    plugin: String,
    version: String,
    menus: Vec<plinth_package::manifest::Menu>,
    buttons: Vec<plinth_package::access::Button>,
    permissions: Vec<ApiPermissionView>,
}

/// Every code a role can be granted: the host's own and those each
/// serving plugin declares.
#[derive(Debug, Serialize)]
pub struct GrantableCodes {
    /// The built-in role that holds every code without grants.
    super_admin_role: &'static str,
    host: Vec<CodeView>,
    plugins: Vec<PluginCodes>,
}

/// `GET /api/admin/permissions`: the codes [`grant`] accepts, built from
/// [`accounts::HOST_PERMISSIONS`] and the serving plugins' manifests, so
/// the admin web holds no copy of the list.
pub async fn permissions(State(state): State<AppState>) -> Result<Json<GrantableCodes>, ApiError> {
    let host = state.host()?;
    let mut plugins: Vec<PluginCodes> = host
        .registry
        .all()
        .iter()
        .map(|p| {
            let m = &p.manifest;
            let mut menus = m.menus.clone();
            menus.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| a.id.cmp(&b.id)));
            PluginCodes {
                plugin: p.name().to_owned(),
                version: p.version(),
                menus,
                buttons: m.buttons.clone(),
                permissions: m
                    .permissions
                    .iter()
                    .map(|d| ApiPermissionView {
                        code: d.code.clone(),
                        title: d.title.clone(),
                        routes: m
                            .routes
                            .iter()
                            .filter(|r| r.permission.as_deref() == Some(d.code.as_str()))
                            .map(|r| format!("{} {}", r.method, r.path))
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    plugins.sort_by(|a, b| a.plugin.cmp(&b.plugin));
    Ok(Json(GrantableCodes {
        super_admin_role: SUPER_ADMIN_ROLE,
        host: accounts::HOST_PERMISSIONS
            .iter()
            .map(|(code, title)| CodeView {
                code: (*code).to_owned(),
                title: (*title).to_owned(),
            })
            .collect(),
        plugins,
    }))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: CallerExt,
    Path((name, permission)): Path<(String, String)>,
) -> Result<Json<Vec<RoleGrant>>, ApiError> {
    let caller = super::auth::require(caller)?;
    find_role(&state, &name).await?;
    within_reach(
        &caller,
        false,
        std::slice::from_ref(&permission),
        None,
        "revoke it",
    )?;
    let host = state.host()?;
    store::revoke(&host.db, &name, &permission)
        .await
        .map_err(db_error)?;
    host.grants.bump();
    Ok(Json(
        store::role_grants(&host.db, &name)
            .await
            .map_err(db_error)?,
    ))
}

/// A service token as listed (never the token).
#[derive(Debug, Serialize)]
pub struct TokenView {
    #[serde(flatten)]
    row: ServiceTokenRow,
    permissions: Vec<String>,
    /// The token itself: only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

pub async fn list_tokens(State(state): State<AppState>) -> Result<Json<Vec<TokenView>>, ApiError> {
    let host = state.host()?;
    let mut out = Vec::new();
    for row in store::service_tokens(&host.db).await.map_err(db_error)? {
        let permissions = store::service_token_grants(&host.db, row.id)
            .await
            .map_err(db_error)?;
        out.push(TokenView {
            row,
            permissions,
            token: None,
        });
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: String,
    permissions: Vec<String>,
}

/// Creates a service token with its own grants; the token is in this
/// answer only.
pub async fn create_token(
    State(state): State<AppState>,
    caller: CallerExt,
    body: JsonBody,
) -> Result<(StatusCode, Json<TokenView>), ApiError> {
    let caller = super::auth::require(caller)?;
    let body: NewToken = object(body, r#"{"name", "permissions": ["plugins.install", …]}"#)?;
    check_name("token name", &body.name)?;
    if let Some(bad) = body
        .permissions
        .iter()
        .find(|p| !accounts::is_host_permission(p))
    {
        return Err(ApiError::bad_request(format!(
            "{bad:?} is not a host permission; a service token holds host permissions only"
        )));
    }
    within_reach(
        &caller,
        false,
        &body.permissions,
        None,
        "give it to a token",
    )?;
    let host = state.host()?;
    let secret = new_secret();
    let row = store::insert_service_token(&host.db, &body.name, &secret_hash(&secret))
        .await
        .map_err(db_error)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("a service token named {:?} exists", body.name),
            )
        })?;
    store::set_service_token_grants(&host.db, row.id, &body.permissions)
        .await
        .map_err(db_error)?;
    let permissions = store::service_token_grants(&host.db, row.id)
        .await
        .map_err(db_error)?;
    Ok((
        StatusCode::CREATED,
        Json(TokenView {
            row,
            permissions,
            token: Some(secret),
        }),
    ))
}

/// Revokes a service token; it is refused from the next request on.
pub async fn revoke_token(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let host = state.host()?;
    let row = store::service_token_by_name(&host.db, &name)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::not_found(format!("there is no service token {name:?}")))?;
    store::revoke_service_token(&host.db, row.id)
        .await
        .map_err(db_error)?;
    host.grants.bump();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    user: Option<String>,
    action: Option<String>,
    /// Milliseconds since the epoch, inclusive.
    since: Option<i64>,
    /// Milliseconds since the epoch, exclusive.
    until: Option<i64>,
    /// Paging: entries older than this id.
    before: Option<i64>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct AuditPage {
    entries: Vec<AuditEntry>,
    /// Pass as `before` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
}

pub async fn audit(
    State(state): State<AppState>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(query) = query.map_err(|r| {
        ApiError::bad_request(format!(
            "audit filters are user, action, since, until, before (ms or ids) and limit ({})",
            r.body_text()
        ))
    })?;
    let limit = super::page_limit(query.limit, 100, 1000)?;
    let host = state.host()?;
    let entries = store::audit(
        &host.db,
        &AuditFilter {
            actor: query.user,
            action: query.action,
            since: query.since,
            until: query.until,
            before: query.before,
            limit,
        },
    )
    .await
    .map_err(db_error)?;
    let next_before = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage {
        entries,
        next_before,
    }))
}
