//! SQLite's side of the second wall: while a plugin statement runs, the
//! connection itself refuses every table, function and pragma outside the
//! plugin's set, stops the statement at its time limit and caps the size of
//! any value it builds.
//!
//! sqlx's `Any` pool does not expose the raw `sqlite3*` of a connection, so
//! the hooks are installed on every SQLite connection this process opens,
//! through `sqlite3_auto_extension`: an authorizer, a progress handler and
//! two SQL functions that switch the connection's scope. The host runs
//! `SELECT plinth_scope_enter(token, prefix, ddl, ms, max_len)` before a
//! plugin statement and `SELECT plinth_scope_leave(token)` after it; the
//! token is random per entry, so a plugin statement cannot leave the scope
//! early, and the authorizer refuses `plinth_scope_enter` inside a scope.
//! Outside a scope every hook allows everything, so the host's own
//! statements (and other pools in the same process) run as before.
//!
//! The authorizer is consulted when a statement is prepared, so plugin
//! statements must never come from a statement cache (`persistent(false)`):
//! a cached statement prepared for one plugin would skip the check for
//! another.
//!
//! This is the host's only `unsafe` code. It is allowed here, locally, because
//! SQLite's hooks exist only as C callbacks taking raw pointers; each block
//! says what it relies on. The callbacks never panic (a panic across
//! `extern "C"` aborts the process): they take no locks that can be
//! poisoned into a panic and index nothing.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use libsqlite3_sys as ffi;

/// The name of the function that enters a plugin's scope.
const ENTER: &CStr = c"plinth_scope_enter";
/// The name of the function that leaves it.
const LEAVE: &CStr = c"plinth_scope_leave";
/// SQLite's default longest string or blob, restored on leaving a scope.
const DEFAULT_MAX_LENGTH: c_int = 1_000_000_000;
/// The host's own busy time-out (matches `PRAGMA busy_timeout` at connect).
pub const HOST_BUSY_TIMEOUT: Duration = Duration::from_millis(5000);
/// Functions a plugin statement may never call, whatever the guard says:
/// they load code, touch files or reach the scope switch.
const DENIED_FUNCTIONS: &[&str] = &[
    "load_extension",
    "plinth_scope_enter",
    "readfile",
    "writefile",
    "edit",
    "fts3_tokenizer",
];

/// Registers the hooks for every SQLite connection opened from now on.
/// Idempotent; call it before the first SQLite pool is opened.
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `entry` has the signature SQLite expects of an extension
        // entry point; registering it only stores the pointer.
        let rc = unsafe { ffi::sqlite3_auto_extension(Some(entry)) };
        if rc != ffi::SQLITE_OK {
            tracing::error!(
                code = rc,
                "cannot register the SQLite plugin authorizer; plugin SQL has only the parser guard"
            );
        }
    });
}

/// The scope a connection is in while a plugin statement runs.
struct Scope {
    token: i64,
    /// Lower-cased table prefix.
    prefix: String,
    /// Whether DDL on the plugin's own tables is allowed (migrations and the
    /// install hook).
    ddl: bool,
    deadline: Instant,
    /// What the authorizer refused first, for the error message.
    denied: Option<String>,
}

/// Per-connection state, owned by the connection (freed with it).
struct ConnWall {
    /// The connection itself, to ask whether a name is a real table.
    db: *mut ffi::sqlite3,
    scope: Mutex<Option<Scope>>,
}

impl ConnWall {
    /// Whether `name` is a table or view of this connection (not a CTE or
    /// subquery, which SQLite also reports as read when no column is).
    fn is_table(&self, name: &str) -> bool {
        let Ok(name) = std::ffi::CString::new(name) else {
            return true;
        };
        // SAFETY: `self.db` is the open connection this state belongs to,
        // and this runs on its thread inside one of its callbacks; with a
        // null column the call only looks the table up in the loaded schema.
        let rc = unsafe {
            ffi::sqlite3_table_column_metadata(
                self.db,
                std::ptr::null(),
                name.as_ptr(),
                std::ptr::null(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        rc == ffi::SQLITE_OK
    }
}

impl ConnWall {
    fn with_scope<R>(&self, f: impl FnOnce(&mut Option<Scope>) -> R) -> R {
        let mut guard = match self.scope.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

unsafe extern "C" fn entry(
    db: *mut ffi::sqlite3,
    _err: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    let wall = Box::into_raw(Box::new(ConnWall {
        db,
        scope: Mutex::new(None),
    }))
    .cast::<c_void>();
    // SAFETY: `db` is the connection being opened; `wall` stays valid until
    // `destroy` runs when the connection closes (SQLite calls it on failure
    // too, so it is never leaked). The other hooks get the same pointer and
    // are never called after the connection is closed.
    unsafe {
        let rc = ffi::sqlite3_create_function_v2(
            db,
            ENTER.as_ptr(),
            5,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DIRECTONLY,
            wall,
            Some(enter_fn),
            None,
            None,
            Some(destroy),
        );
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let rc = ffi::sqlite3_create_function_v2(
            db,
            LEAVE.as_ptr(),
            1,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DIRECTONLY,
            wall,
            Some(leave_fn),
            None,
            None,
            None,
        );
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        ffi::sqlite3_set_authorizer(db, Some(authorize), wall);
        ffi::sqlite3_progress_handler(db, 1000, Some(progress), wall);
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn destroy(wall: *mut c_void) {
    // SAFETY: `wall` came from `Box::into_raw` in `entry`, and SQLite calls
    // this exactly once.
    drop(unsafe { Box::from_raw(wall.cast::<ConnWall>()) });
}

/// # Safety
/// `wall` is the pointer `entry` registered (valid while the connection is).
unsafe fn wall_ref<'a>(wall: *mut c_void) -> &'a ConnWall {
    // SAFETY: see the function's contract.
    unsafe { &*wall.cast::<ConnWall>() }
}

/// # Safety
/// `s` is null or a NUL-terminated string SQLite owns for the call.
unsafe fn text<'a>(s: *const c_char) -> Option<&'a str> {
    if s.is_null() {
        return None;
    }
    // SAFETY: see the function's contract.
    unsafe { CStr::from_ptr(s) }.to_str().ok()
}

/// `plinth_scope_enter(token, prefix, ddl, timeout_ms, max_len)`.
unsafe extern "C" fn enter_fn(
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    if argc != 5 {
        return;
    }
    // SAFETY: SQLite passes `argc` valid values and the context of this call;
    // the user data is the `ConnWall` of this connection.
    unsafe {
        let arg = |i: usize| *argv.add(i);
        let wall = wall_ref(ffi::sqlite3_user_data(ctx));
        let token = ffi::sqlite3_value_int64(arg(0));
        let prefix = text(ffi::sqlite3_value_text(arg(1)).cast::<c_char>())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let ddl = ffi::sqlite3_value_int64(arg(2)) != 0;
        let timeout_ms = ffi::sqlite3_value_int64(arg(3)).max(1) as u64;
        let max_len = ffi::sqlite3_value_int64(arg(4)).clamp(1024, i64::from(c_int::MAX)) as c_int;
        let db = ffi::sqlite3_context_db_handle(ctx);
        let entered = wall.with_scope(|scope| {
            if scope.is_some() {
                return false;
            }
            *scope = Some(Scope {
                token,
                prefix,
                ddl,
                deadline: Instant::now() + Duration::from_millis(timeout_ms),
                denied: None,
            });
            true
        });
        if !entered {
            let message = c"a plugin scope is already active on this connection";
            ffi::sqlite3_result_error(ctx, message.as_ptr(), -1);
            return;
        }
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_LENGTH, max_len);
        // A plugin statement waits for the write lock at most until its own
        // deadline, and never longer than the host would.
        let busy = Duration::from_millis(timeout_ms).min(HOST_BUSY_TIMEOUT / 2);
        ffi::sqlite3_busy_timeout(db, busy.as_millis() as c_int);
        ffi::sqlite3_result_null(ctx);
    }
}

/// `plinth_scope_leave(token)`: returns what the authorizer refused, or NULL.
unsafe extern "C" fn leave_fn(
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    if argc != 1 {
        return;
    }
    // SAFETY: as in `enter_fn`.
    unsafe {
        let wall = wall_ref(ffi::sqlite3_user_data(ctx));
        let token = ffi::sqlite3_value_int64(*argv);
        let left = wall.with_scope(|scope| {
            if scope.as_ref().is_some_and(|s| s.token == token) {
                Some(scope.take().and_then(|s| s.denied))
            } else {
                None
            }
        });
        let Some(denied) = left else {
            let message = c"not the active plugin scope";
            ffi::sqlite3_result_error(ctx, message.as_ptr(), -1);
            return;
        };
        let db = ffi::sqlite3_context_db_handle(ctx);
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_LENGTH, DEFAULT_MAX_LENGTH);
        ffi::sqlite3_busy_timeout(db, HOST_BUSY_TIMEOUT.as_millis() as c_int);
        match denied {
            Some(text) => ffi::sqlite3_result_text(
                ctx,
                text.as_ptr().cast::<c_char>(),
                text.len() as c_int,
                ffi::SQLITE_TRANSIENT(),
            ),
            None => ffi::sqlite3_result_null(ctx),
        }
    }
}

unsafe extern "C" fn progress(wall: *mut c_void) -> c_int {
    // SAFETY: `wall` is this connection's state.
    let wall = unsafe { wall_ref(wall) };
    let expired =
        wall.with_scope(|scope| scope.as_ref().is_some_and(|s| Instant::now() >= s.deadline));
    c_int::from(expired)
}

unsafe extern "C" fn authorize(
    wall: *mut c_void,
    action: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    database: *const c_char,
    _trigger_or_view: *const c_char,
) -> c_int {
    // SAFETY: `wall` is this connection's state; the strings are SQLite's,
    // valid for this call.
    let (wall, arg1, arg2, database) =
        unsafe { (wall_ref(wall), text(arg1), text(arg2), text(database)) };
    wall.with_scope(|scope| {
        let Some(scope) = scope.as_mut() else {
            return ffi::SQLITE_OK;
        };
        // A read reported without a database is of a CTE or subquery, or of
        // a table none of whose columns is used; only the last is checked.
        if action == ffi::SQLITE_READ && database.is_none() && !wall.is_table(arg1.unwrap_or("")) {
            return ffi::SQLITE_OK;
        }
        match decide(scope, action, arg1, arg2, database) {
            Ok(()) => ffi::SQLITE_OK,
            Err(reason) => {
                scope.denied.get_or_insert(reason);
                ffi::SQLITE_DENY
            }
        }
    })
}

/// Whether a plugin in `scope` may do `action`; the refusal says why.
fn decide(
    scope: &Scope,
    action: c_int,
    arg1: Option<&str>,
    arg2: Option<&str>,
    database: Option<&str>,
) -> Result<(), String> {
    let owned = |name: Option<&str>| -> Result<(), String> {
        let name = name.unwrap_or_default();
        if !matches!(database, None | Some("main")) {
            return Err(format!(
                "`{name}` is in database `{}`, which plugins cannot reach",
                database.unwrap_or_default()
            ));
        }
        let schema_table = name.eq_ignore_ascii_case("sqlite_master")
            || name.eq_ignore_ascii_case("sqlite_schema");
        if scope.ddl && schema_table {
            // SQLite itself writes the schema table when DDL runs.
            return Ok(());
        }
        let prefix = scope.prefix.as_bytes();
        if name.len() >= prefix.len()
            && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix)
        {
            Ok(())
        } else {
            Err(format!(
                "`{name}` is not this plugin's table (this plugin's prefix is `{}`)",
                scope.prefix
            ))
        }
    };
    let ddl = |name: Option<&str>| -> Result<(), String> {
        if !scope.ddl {
            return Err(
                "schema changes are allowed only in migrations and the install hook".into(),
            );
        }
        owned(name)
    };
    match action {
        ffi::SQLITE_SELECT | ffi::SQLITE_RECURSIVE => Ok(()),
        ffi::SQLITE_READ | ffi::SQLITE_INSERT | ffi::SQLITE_UPDATE | ffi::SQLITE_DELETE => {
            owned(arg1)
        }
        ffi::SQLITE_FUNCTION => {
            let name = arg2.unwrap_or_default();
            if DENIED_FUNCTIONS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(name))
            {
                Err(format!("the function `{name}` is not available to plugins"))
            } else {
                Ok(())
            }
        }
        ffi::SQLITE_CREATE_TABLE
        | ffi::SQLITE_CREATE_VIEW
        | ffi::SQLITE_DROP_TABLE
        | ffi::SQLITE_DROP_VIEW => ddl(arg1),
        ffi::SQLITE_CREATE_INDEX
        | ffi::SQLITE_DROP_INDEX
        | ffi::SQLITE_CREATE_TRIGGER
        | ffi::SQLITE_DROP_TRIGGER
        | ffi::SQLITE_ALTER_TABLE => ddl(arg2),
        // SQLite checks these itself while it builds an index; they rebuild
        // or measure indexes and reveal nothing.
        ffi::SQLITE_REINDEX | ffi::SQLITE_ANALYZE if scope.ddl => Ok(()),
        ffi::SQLITE_PRAGMA => Err(format!(
            "PRAGMA {} is not available to plugins",
            arg1.unwrap_or_default()
        )),
        ffi::SQLITE_ATTACH | ffi::SQLITE_DETACH => {
            Err("ATTACH and DETACH are not available to plugins".into())
        }
        ffi::SQLITE_TRANSACTION | ffi::SQLITE_SAVEPOINT => {
            Err("the host manages transactions; plugins cannot begin or end one".into())
        }
        _ => Err(format!(
            "this kind of statement (SQLite action {action}) is not available to plugins"
        )),
    }
}
