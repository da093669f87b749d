//! The database's own wall around each plugin's tables, on PostgreSQL and
//! MySQL/MariaDB, and what the host's database user may do.
//!
//! On PostgreSQL every plugin gets a role. Its migrations and install hook
//! run inside the host's transaction switched to that role
//! (`set_config('role', …, true)`, the function form of `SET LOCAL ROLE`);
//! its request SQL goes through a small pool that logs in as the role
//! (random password, set at every start-up and install, never stored),
//! because any statement may reset a switched role to the session's user.
//! Either way the server itself refuses anything on tables the role does not own:
//! the host's tables belong to the host's user, and each plugin's tables to
//! its own role. Roles are cluster-wide while a database is not, so a role's
//! name carries a short hash of the database and schema
//! (`plinth_p_<hash>_<plugin>`): two hosts (or two tests) on different
//! databases of one server never share a role.
//!
//! [`DbRights`] is found once at connect: whether the user can create roles
//! (superuser or `CREATEROLE`). Without that right the host runs plugin SQL
//! with the parser guard alone; start-up refuses that in production mode
//! (see [`super::plugin_sql::PluginSqlPolicy`]).
//!
//! On MySQL/MariaDB `SET ROLE` adds privileges to the connecting user's and
//! cannot take a root user's away, so each plugin gets a database account
//! of its own instead, and a small pool connecting as it. Its password is
//! random, set at every start-up and install, and never stored. MySQL table
//! grants take no wildcards, so the account is granted every privilege on
//! exactly the names under its prefix: the tables that exist, and every
//! name under the prefix that its migration files mention, before they run
//! (a table-level grant that includes CREATE may name a table that does not
//! exist yet). Its migrations and install hook then run through its own
//! account, so a statement on any other table is refused by the server; no
//! database-wide CREATE is granted. Every plugin statement carries a
//! server-side time limit (`max_statement_time`, MariaDB;
//! `max_execution_time`, MySQL).
//!
//! A plugin removed with its data loses its role or account
//! ([`drop_role`]); one removed with its data kept keeps it, because the
//! kept tables are owned by (PostgreSQL) or granted to (MySQL) it, and a
//! later install of the same plugin finds it and goes on with it.

use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, AnyPool, Row};

use super::{Db, Dialect};

/// What the host's database user can do for the second wall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbRights {
    /// PostgreSQL, and the user can create roles.
    PostgresRoles {
        /// Short hash of database and schema, part of every role name.
        tag: String,
        /// The schema plugin tables live in (`current_schema()` at connect).
        schema: String,
        /// The session's `search_path`, restored after a plugin statement
        /// inside a host transaction.
        search_path: String,
        superuser: bool,
    },
    /// SQLite: the authorizer on every connection ([`super::sqlite_wall`]).
    SqliteAuthorizer,
    /// MySQL or MariaDB: a database account per plugin (when the user may
    /// create them) and statement time limits.
    Mysql {
        mariadb: bool,
        /// Short hash of the database, part of every account name.
        tag: String,
        /// The host part of the host's own account, used for the plugins'.
        account_host: String,
        /// The right the host's account lacks to make plugin accounts
        /// (`CREATE USER`, `GRANT OPTION`); then the guard is the only wall.
        missing: Option<String>,
    },
    /// The user lacks `missing`: the parser guard is the only wall.
    GuardOnly { missing: String },
}

impl DbRights {
    /// The right the host's user lacks for the database's own wall, if any.
    pub fn missing(&self) -> Option<&str> {
        match self {
            Self::GuardOnly { missing } => Some(missing),
            Self::Mysql {
                missing: Some(missing),
                ..
            } => Some(missing),
            _ => None,
        }
    }
}

/// Finds what the connecting user may do.
pub async fn probe(pool: &AnyPool, dialect: Dialect) -> Result<DbRights, sqlx::Error> {
    match dialect {
        Dialect::Sqlite => Ok(DbRights::SqliteAuthorizer),
        Dialect::Mysql => {
            let row = sqlx::query("SELECT VERSION(), CURRENT_USER(), DATABASE()")
                .fetch_one(pool)
                .await?;
            let version: String = row.try_get(0)?;
            let user: String = row.try_get(1)?;
            let database: String = row.try_get(2)?;
            Ok(DbRights::Mysql {
                mariadb: version.to_ascii_lowercase().contains("mariadb"),
                tag: role_tag(&database, ""),
                account_host: user.rsplit_once('@').map_or("%", |(_, h)| h).to_owned(),
                missing: mysql_missing_rights(pool, &user).await?,
            })
        }
        Dialect::Postgres => {
            let row = sqlx::query(
                "SELECT r.rolsuper, r.rolcreaterole, current_database()::text, \
                 current_schema()::text, current_setting('search_path') \
                 FROM pg_roles r WHERE r.rolname = current_user",
            )
            .fetch_one(pool)
            .await?;
            let superuser: bool = row.try_get(0)?;
            let create_role: bool = row.try_get(1)?;
            let database: String = row.try_get(2)?;
            let schema: String = row.try_get(3)?;
            let search_path: String = row.try_get(4)?;
            if !superuser && !create_role {
                return Ok(DbRights::GuardOnly {
                    missing: "CREATEROLE (PostgreSQL: ALTER ROLE <host user> CREATEROLE)".into(),
                });
            }
            Ok(DbRights::PostgresRoles {
                tag: role_tag(&database, &schema),
                schema,
                search_path,
                superuser,
            })
        }
    }
}

/// What the host's MySQL/MariaDB account lacks to make and grant plugin
/// accounts, read from `information_schema` (the account's own rows are
/// visible to it): `CREATE USER` globally, and the grant option globally or
/// on the host's database.
async fn mysql_missing_rights(
    pool: &AnyPool,
    current_user: &str,
) -> Result<Option<String>, sqlx::Error> {
    // information_schema spells the account 'user'@'host'.
    let (user, host) = current_user.rsplit_once('@').unwrap_or((current_user, "%"));
    let grantee = format!("'{user}'@'{host}'");
    let row = sqlx::query(
        "SELECT \
         (SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES \
          WHERE GRANTEE = ? AND PRIVILEGE_TYPE = 'CREATE USER'), \
         CAST((SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES \
          WHERE GRANTEE = ? AND IS_GRANTABLE = 'YES') + \
         (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES \
          WHERE GRANTEE = ? AND IS_GRANTABLE = 'YES' AND TABLE_SCHEMA = DATABASE()) AS SIGNED)",
    )
    .bind(&grantee)
    .bind(&grantee)
    .bind(&grantee)
    .persistent(false)
    .fetch_one(pool)
    .await?;
    let create_user: i64 = row.try_get(0)?;
    let grantable: i64 = row.try_get(1)?;
    let missing: Vec<&str> = [
        (create_user == 0, "CREATE USER"),
        (grantable == 0, "GRANT OPTION"),
    ]
    .into_iter()
    .filter_map(|(lacks, right)| lacks.then_some(right))
    .collect();
    Ok((!missing.is_empty()).then(|| {
        format!(
            "{} (MySQL/MariaDB: GRANT CREATE USER ON *.* TO <host user>; \
             GRANT ALL ON <database>.* TO <host user> WITH GRANT OPTION)",
            missing.join(" and ")
        )
    }))
}

/// The part of every role name that is specific to one database and schema.
pub fn role_tag(database: &str, schema: &str) -> String {
    let digest = Sha256::digest(format!("{database}\0{schema}").as_bytes());
    hex::encode(&digest[..4])
}

/// The role of `plugin` for a database whose tag is `tag`; at most 63 bytes
/// (PostgreSQL's identifier limit).
pub fn role_name(tag: &str, plugin: &str) -> String {
    bounded_name(tag, plugin, 63)
}

/// The MySQL/MariaDB account of `plugin`; at most 32 characters (MySQL's
/// limit for user names).
pub fn account_name(tag: &str, plugin: &str) -> String {
    bounded_name(tag, plugin, 32)
}

fn bounded_name(tag: &str, plugin: &str, max: usize) -> String {
    let clean: String = plugin
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let base = format!("plinth_p_{tag}_");
    if base.len() + clean.len() <= max {
        return base + &clean;
    }
    let digest = hex::encode(&Sha256::digest(plugin.as_bytes())[..2]);
    let keep = max.saturating_sub(base.len() + digest.len() + 1);
    format!("{base}{}_{digest}", &clean[..keep])
}

/// `"name"` with embedded quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates `plugin`'s role when missing, lets it create tables in the
/// schema, lets the host switch to it, and hands it the tables (and free
/// sequences) under its prefix that it does not own yet, e.g. ones created
/// before roles existed. Idempotent; a no-op where roles are not used.
/// On MySQL/MariaDB `names` (under the prefix, e.g. from [`names_under_prefix`])
/// are granted too, before they exist.
pub async fn ensure_role(
    db: &Db,
    plugin: &str,
    table_prefix: &str,
    names: &[String],
) -> Result<(), sqlx::Error> {
    if let DbRights::Mysql { .. } = db.plugin_sql().rights() {
        return ensure_account(db, plugin, table_prefix, names).await;
    }
    let DbRights::PostgresRoles {
        tag,
        schema,
        superuser,
        ..
    } = db.plugin_sql().rights()
    else {
        return Ok(());
    };
    let role = role_name(tag, plugin);
    let quoted = quote_ident(&role);
    let mut conn = db.pool().acquire().await?;
    let exists = sqlx::query("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(&role)
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
    if !exists {
        // Two hosts on one database could race here; the loser's error is
        // "already exists", which is what it wanted.
        if let Err(e) = sqlx::query(&format!("CREATE ROLE {quoted} NOLOGIN"))
            .execute(&mut *conn)
            .await
            && !e.to_string().contains("already exists")
        {
            return Err(e);
        }
    }
    // Request SQL logs in as the role itself (see `login_pool`), so a
    // statement that resets its role falls back to the plugin, not the host.
    let password = hex::encode(rand::random::<[u8; 24]>());
    sqlx::query(&format!("ALTER ROLE {quoted} LOGIN PASSWORD '{password}'"))
        .persistent(false)
        .execute(&mut *conn)
        .await?;
    if !superuser {
        sqlx::query(&format!("GRANT {quoted} TO CURRENT_USER"))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(&format!(
        "GRANT USAGE, CREATE ON SCHEMA {} TO {quoted}",
        quote_ident(schema)
    ))
    .execute(&mut *conn)
    .await?;
    adopt_tables(&mut conn, schema, &role, table_prefix).await?;
    drop(conn);
    if let Err(e) = db
        .plugin_sql()
        .open_plugin_pool(plugin, &role, &password)
        .await
    {
        tracing::warn!(plugin, error = %e, "cannot log in as the plugin's role (check pg_hba.conf for password logins from the host); its request SQL switches role on the host's connections instead");
    }
    Ok(())
}

/// `'text'` for MySQL, with quotes and backslashes escaped.
fn quote_mysql_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// MySQL/MariaDB: creates `plugin`'s account when missing, gives it a fresh
/// random password (kept only in memory, so no secret is stored), grants
/// it exactly the tables under its prefix and `names`, and opens its small
/// pool. Run again after every migration, so tables it did not foresee are
/// granted. When the host's user cannot create accounts the plugin keeps
/// using the host's pool (start-up said so).
async fn ensure_account(
    db: &Db,
    plugin: &str,
    table_prefix: &str,
    names: &[String],
) -> Result<(), sqlx::Error> {
    let DbRights::Mysql {
        tag,
        account_host,
        missing: None,
        ..
    } = db.plugin_sql().rights()
    else {
        return Ok(());
    };
    let account = format!(
        "{}@{}",
        quote_mysql_string(&account_name(tag, plugin)),
        quote_mysql_string(account_host)
    );
    let password = hex::encode(rand::random::<[u8; 24]>());
    let setup = async {
        let mut conn = db.pool().acquire().await?;
        sqlx::query(&format!("CREATE USER IF NOT EXISTS {account}"))
            .persistent(false)
            .execute(&mut *conn)
            .await?;
        sqlx::query(&format!(
            "ALTER USER {account} IDENTIFIED BY {}",
            quote_mysql_string(&password)
        ))
        .persistent(false)
        .execute(&mut *conn)
        .await?;
        let rows = sqlx::query(
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND LEFT(table_name, CHAR_LENGTH(?)) = ?",
        )
        .bind(table_prefix)
        .bind(table_prefix)
        .fetch_all(&mut *conn)
        .await?;
        // The prefix itself is a name under the prefix: granting it lets the
        // account connect before the plugin has any table, so a plugin with
        // none still runs its hook through its own account.
        let mut tables = names.to_vec();
        tables.push(table_prefix.to_owned());
        for row in rows {
            tables.push(row.try_get(0)?);
        }
        tables.sort();
        tables.dedup();
        for table in &tables {
            // Every privilege on its own names (DDL included, for its
            // migrations), never the grant option.
            sqlx::query(&format!(
                "GRANT ALL PRIVILEGES ON `{}` TO {account}",
                table.replace('`', "``")
            ))
            .persistent(false)
            .execute(&mut *conn)
            .await?;
        }
        Ok::<_, sqlx::Error>(())
    };
    let opened = match setup.await {
        Ok(()) => {
            db.plugin_sql()
                .open_plugin_pool(plugin, &account_name(tag, plugin), &password)
                .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = opened {
        tracing::warn!(plugin, error = %e, "cannot set up the plugin's own database account; its SQL runs through the host's account, checked by the parser guard alone");
    }
    Ok(())
}

/// Drops `plugin`'s role (PostgreSQL: after dropping what it owns and was
/// granted in this database) or account (MySQL/MariaDB: its grants go
/// with it), and closes its pool. For a removal with its data: its tables
/// are gone already. Idempotent.
pub async fn drop_role(db: &Db, plugin: &str) -> Result<(), sqlx::Error> {
    db.plugin_sql().close_plugin_pool(plugin).await;
    match db.plugin_sql().rights() {
        DbRights::PostgresRoles { tag, .. } => {
            let role = role_name(tag, plugin);
            let exists = sqlx::query("SELECT 1 FROM pg_roles WHERE rolname = $1")
                .bind(&role)
                .fetch_optional(db.pool())
                .await?
                .is_some();
            if exists {
                let quoted = quote_ident(&role);
                sqlx::query(&format!("DROP OWNED BY {quoted}"))
                    .execute(db.pool())
                    .await?;
                sqlx::query(&format!("DROP ROLE IF EXISTS {quoted}"))
                    .execute(db.pool())
                    .await?;
            }
        }
        DbRights::Mysql {
            tag,
            account_host,
            missing: None,
            ..
        } => {
            sqlx::query(&format!(
                "DROP USER IF EXISTS {}@{}",
                quote_mysql_string(&account_name(tag, plugin)),
                quote_mysql_string(account_host)
            ))
            .persistent(false)
            .execute(db.pool())
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Every name under `table_prefix` that `sql` mentions (bare, or quoted with
/// backticks or double quotes), as written: what a plugin's MySQL account is
/// granted before its migrations run. Names the guard would not let a
/// plugin create (anything but ASCII letters, digits and `_`) are left out;
/// over-collecting is harmless, since every name is under the prefix.
pub fn names_under_prefix(sql: &str, table_prefix: &str) -> Vec<String> {
    let prefix = table_prefix.to_ascii_lowercase();
    let mut names: Vec<String> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.len() > prefix.len() && word.to_ascii_lowercase().starts_with(&prefix))
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

async fn adopt_tables(
    conn: &mut AnyConnection,
    schema: &str,
    role: &str,
    table_prefix: &str,
) -> Result<(), sqlx::Error> {
    // Tables, views and sequences not tied to a column (those follow their
    // table) under the prefix, not yet owned by the role.
    let rows = sqlx::query(
        "SELECT c.relname::text, c.relkind::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND left(c.relname, length($2)) = $2 \
         AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') \
         AND pg_get_userbyid(c.relowner) <> $3 \
         AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d \
             WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))",
    )
    .bind(schema)
    .bind(table_prefix)
    .bind(role)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let name: String = row.try_get(0)?;
        let kind: String = row.try_get(1)?;
        let object = match kind.as_str() {
            "v" => "VIEW",
            "m" => "MATERIALIZED VIEW",
            "f" => "FOREIGN TABLE",
            "S" => "SEQUENCE",
            _ => "TABLE",
        };
        sqlx::query(&format!(
            "ALTER {object} {}.{} OWNER TO {}",
            quote_ident(schema),
            quote_ident(&name),
            quote_ident(role)
        ))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Switches the current transaction to `plugin`'s role, with a statement
/// time limit and the host's schema as the only search path. Undone by
/// [`leave`] or by the end of the transaction. Without the right to create
/// roles only the time limit is set.
pub async fn enter(
    conn: &mut AnyConnection,
    rights: &DbRights,
    plugin: &str,
    timeout_ms: u64,
) -> Result<(), sqlx::Error> {
    let timeout = timeout_ms.max(1).to_string();
    match rights {
        DbRights::PostgresRoles { tag, schema, .. } => {
            sqlx::query(
                "SELECT set_config('role', $1, true), set_config('statement_timeout', $2, true), \
                 set_config('search_path', $3, true)",
            )
            .bind(role_name(tag, plugin))
            .bind(timeout)
            .bind(quote_ident(schema))
            .execute(&mut *conn)
            .await?;
        }
        _ => {
            sqlx::query("SELECT set_config('statement_timeout', $1, true)")
                .bind(timeout)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Back to the host's own role inside a transaction the host goes on using.
pub async fn leave(conn: &mut AnyConnection, rights: &DbRights) -> Result<(), sqlx::Error> {
    match rights {
        DbRights::PostgresRoles { search_path, .. } => {
            sqlx::query(
                "SELECT set_config('role', 'none', true), set_config('statement_timeout', '0', true), \
                 set_config('search_path', $1, true)",
            )
            .bind(search_path)
            .execute(&mut *conn)
            .await?;
        }
        _ => {
            sqlx::query("SELECT set_config('statement_timeout', '0', true)")
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Drops the roles of every plugin of the database whose tag is `tag`, for
/// test teardown and `plinth` maintenance after the database is gone. A role
/// that still owns objects in another database is left alone.
pub async fn drop_roles_for_tag(pool: &AnyPool, tag: &str) -> Result<(), sqlx::Error> {
    let pattern = format!("plinth\\_p\\_{tag}\\_%");
    let rows = sqlx::query("SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1")
        .bind(pattern)
        .fetch_all(pool)
        .await?;
    for row in rows {
        let role: String = row.try_get(0)?;
        let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {}", quote_ident(&role)))
            .execute(pool)
            .await;
    }
    Ok(())
}

/// MySQL/MariaDB: drops the plugin accounts of the database whose tag is
/// `tag`, for test teardown.
pub async fn drop_accounts_for_tag(pool: &AnyPool, tag: &str) -> Result<(), sqlx::Error> {
    let pattern = format!("plinth\\_p\\_{tag}\\_%");
    let rows = sqlx::query(
        "SELECT CAST(user AS CHAR), CAST(host AS CHAR) FROM mysql.user WHERE user LIKE ?",
    )
    .bind(pattern)
    .fetch_all(pool)
    .await?;
    for row in rows {
        let user: String = row.try_get(0)?;
        let host: String = row.try_get(1)?;
        let _ = sqlx::query(&format!(
            "DROP USER IF EXISTS {}@{}",
            quote_mysql_string(&user),
            quote_mysql_string(&host)
        ))
        .persistent(false)
        .execute(pool)
        .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_per_database_and_fit_postgres() {
        let a = role_tag("test_1", "public");
        let b = role_tag("test_2", "public");
        assert_ne!(a, b);
        assert_eq!(
            role_name(&a, "goods-acme"),
            format!("plinth_p_{a}_goods_acme")
        );
        let long = "x".repeat(80);
        let name = role_name(&a, &long);
        assert!(name.len() <= 63, "{name}");
        assert_ne!(role_name(&a, &long), role_name(&a, &"x".repeat(81)));
    }

    #[test]
    fn migration_names_under_the_prefix_are_found_bare_or_quoted() {
        let sql = "CREATE TABLE probe_notes (id INT, probe_ref INT);\n\
                   ALTER TABLE `probe_tags` ADD KEY k (id); CREATE TABLE \"Probe_Up\" (a INT);\n\
                   INSERT INTO goods_items SELECT * FROM probe_";
        assert_eq!(
            names_under_prefix(sql, "probe_"),
            ["Probe_Up", "probe_notes", "probe_ref", "probe_tags"]
        );
    }
}
