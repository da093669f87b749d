//! The SQL scope guard: decides whether a plugin's SQL statement may run,
//! and produces the exact text the database gets.
//!
//! Plugins run SQL against the host's own database. Each plugin owns the
//! tables whose names start with its table prefix (for example `goods_`) and
//! nothing else. This module owns that rule, and the placeholder contract
//! (plugins write `?`; the host rewrites it for the database's dialect). It
//! is the first wall: it gives plugin authors clear messages. The database's
//! own per-plugin rights are the second (see `plugin_sql`).
//!
//! # Why parsing, and why the tree is re-rendered
//!
//! The decision is made on the syntax tree produced by `sqlparser` for the
//! database's own dialect, never by searching the SQL text. The database
//! then runs **the statement re-rendered from that checked tree**
//! (sqlparser's `Display`), never the plugin's text, so anything the guard's
//! tokenizer dropped or read differently from the server's (comments,
//! executable comments, odd comment openers, text after a NUL) cannot reach
//! the server. The rendered text is parsed once more and must give the same
//! tree, or the statement is refused: what runs is what was checked.
//!
//! # Rules
//!
//! * Before parsing, one linear pass over the text and its tokens
//!   ([`lexical`]) refuses: statements over [`MAX_STATEMENT_BYTES`]; NUL and
//!   every other control character except tab and newline (CR only as part
//!   of CRLF, in migration files); any comment in runtime SQL (`--`, `/*`,
//!   and `#` on MySQL, even inside a literal: pass text as a parameter);
//!   MySQL executable comments `/*!`, `/*M!` everywhere, migration files
//!   included; nesting deeper than [`MAX_NESTING`] brackets and expressions
//!   chaining more than [`MAX_CHAIN`] tokens without a comma (so no
//!   statement can overflow the stack in the parser, the visitor, the
//!   renderer or `Drop`); MySQL `OUTFILE`, `DUMPFILE` and `LOAD_FILE`. The
//!   parser runs with a recursion limit as well.
//! * Exactly one statement per [`check_statement`] call (a trailing `;` is
//!   fine). [`check_script`] splits migration files into statements.
//! * Allowed statements: queries (`SELECT`, `WITH`, `UNION`, `VALUES`, ...)
//!   are [`StatementKind::Read`]; `INSERT`/`REPLACE`, `UPDATE`, `DELETE` are
//!   [`StatementKind::Write`]. With [`Allow::DmlAndDdl`] (install hooks and
//!   migration files) also `CREATE`/`ALTER`/`DROP TABLE`, `CREATE`/`DROP
//!   INDEX`, `CREATE`/`DROP VIEW`, MySQL `RENAME TABLE` and `TRUNCATE`, all
//!   [`StatementKind::Ddl`]. Everything else (`PRAGMA`, `ATTACH`, `SET`,
//!   transactions, `GRANT`, `COPY`, `MERGE`, `CREATE FUNCTION`/`TRIGGER`/
//!   `SCHEMA`, `EXPLAIN`, `VACUUM`, `CALL`, `LOAD`, ...) is refused, and so
//!   is `SELECT ... INTO`.
//! * Every relation the statement names must be a single, unqualified,
//!   ASCII identifier starting with the table prefix. Names are compared
//!   the way the database resolves them: PostgreSQL folds unquoted names to
//!   lower case and keeps quoted ones exact; SQLite compares ASCII case-
//!   insensitively; MySQL is treated as `lower_case_table_names=1` would
//!   resolve, and a CTE reference that differs from the CTE only in case
//!   is refused as ambiguous. Schema-qualified names are refused.
//! * A reference that the database resolves to a CTE of the statement is
//!   allowed whatever its name (a CTE named like a host table that is only
//!   read is fine). But every table a statement **writes** — the target of
//!   `INSERT`/`REPLACE` (also `INSERT OR REPLACE`, upserts), every table in
//!   an `UPDATE` target (also `UPDATE OR REPLACE`, MySQL multi-table
//!   updates), every `DELETE` target, `TRUNCATE`, inside data-modifying CTEs
//!   too — is checked as a real table whatever CTEs exist, and a statement
//!   that defines a CTE with the (case-insensitive) name of a table it
//!   writes is refused.
//! * Functions come from a per-dialect allow-list ([`functions`]); anything
//!   else is refused. PostgreSQL `nextval`/`currval`/`setval` only with a
//!   string literal naming a sequence under the prefix. Table-valued
//!   functions in FROM only from a short list that expands values given in
//!   the statement (`json_each`, `jsonb_array_elements`, ...), `UNNEST(...)`
//!   and MySQL `JSON_TABLE(...)`. PostgreSQL casts to `reg*` types are
//!   refused. Schema-qualified function names are refused.
//! * Table prefixes starting with `sqlite_`, `pg_` or `plinth_` are refused:
//!   they would reach the database's catalog or the host's own tables.
//!
//! # Placeholders
//!
//! Plugins write `?` for every parameter; `$1`, `?1`, `:name`, `@name` are
//! refused. For PostgreSQL each `?` becomes `$1`, `$2`, ... in order; SQLite
//! and MySQL keep `?`. The rewrite works on the tokenizer's output, so `?`
//! inside string literals and quoted identifiers is never touched; the
//! rewritten text is then parsed and re-rendered. Because `?` always means a
//! parameter, PostgreSQL's `?`, `?|` and `?&` JSONB operators are unavailable
//! to plugins: use `jsonb_exists`, `jsonb_exists_any` and `jsonb_exists_all`
//! instead.
//!
//! # Cost
//!
//! Everything before the parser is linear in the text; the parser runs
//! twice (the checked text and the rendered one). Callers run long
//! statements off the async runtime.

mod functions;
mod lexical;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::fmt;
use std::ops::ControlFlow;

use sqlparser::ast::{
    AlterTableOperation, ColumnOption, CreateTableLikeKind, DataType, Delete, Expr, FromTable,
    Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, ObjectNamePart,
    ObjectType, Query, RenameTableNameKind, SetExpr, Statement, TableConstraint, TableFactor,
    TableObject, TableWithJoins, Value, Visit, Visitor,
};
use sqlparser::dialect::{Dialect as SqlDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::{Parser, ParserError, ParserOptions};

use super::Dialect;
use lexical::Source;
pub use lexical::{MAX_CHAIN, MAX_NESTING, MAX_SCRIPT_BYTES, MAX_STATEMENT_BYTES};

/// The parser's own recursion limit: a second bound behind
/// [`MAX_NESTING`], well inside what the stack of a worker thread holds.
const RECURSION_LIMIT: usize = 100;

/// What a checked statement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatementKind {
    /// A query: `SELECT`, `WITH ... SELECT`, `VALUES`, set operations.
    Read,
    /// `INSERT`, `REPLACE`, `UPDATE`, `DELETE` (also inside a CTE).
    Write,
    /// Schema changes, including `TRUNCATE`.
    Ddl,
}

/// A statement that passed the guard, ready to be sent to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedStatement {
    /// The statement re-rendered from the checked syntax tree, with
    /// placeholders already in the dialect's form (`$1`, ... on
    /// PostgreSQL) and no trailing `;`. Send exactly this text.
    pub sql: String,
    pub kind: StatementKind,
    /// How many `?` parameters the statement takes.
    pub placeholders: usize,
}

/// Which statement kinds a call site accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Allow {
    /// Runtime requests: queries and data changes only.
    Dml,
    /// Install hooks and migration files: also schema changes.
    DmlAndDdl,
}

/// How a refused statement used a table, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Reads,
    Writes,
    /// Creates, alters, drops, renames or indexes it.
    Changes,
    /// Names it in `REFERENCES`, `LIKE`, `INHERITS`, `CLONE`.
    References,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Reads => "reads",
            Access::Writes => "writes",
            Access::Changes => "changes",
            Access::References => "references",
        })
    }
}

/// Why a statement was refused. The messages are meant for plugin authors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The parser could not read it. Kept apart from refusals: it is
    /// usually a typo, sometimes syntax plugins cannot use.
    #[error(
        "this statement could not be read as SQL plugins may run (a typo, or a kind of statement or syntax not supported for plugins): {0}"
    )]
    Parse(String),
    #[error("no SQL statement given")]
    Empty,
    #[error("only one statement per call (found {0})")]
    MultipleStatements(usize),
    #[error("{what} is not allowed for plugins")]
    Forbidden { what: String },
    #[error(
        "{what} changes the schema, which is only allowed in install hooks and migration files, not in runtime queries"
    )]
    DdlNotAllowed { what: String },
    #[error("{}", outside_scope_message(table, prefix, *access))]
    OutsideScope {
        table: String,
        prefix: String,
        access: Access,
    },
    #[error(
        "\"{name}\" is a qualified name; plugins may only use their own tables and functions by plain, unqualified name"
    )]
    Qualified { name: String },
    #[error("the function {name}() is not allowed for plugins")]
    ForbiddenFunction { name: String },
    #[error(
        "{found} is not a supported placeholder: write ? for every parameter (the host numbers them for the database)"
    )]
    Placeholder { found: String },
    #[error(
        "invalid table prefix \"{prefix}\": expected lowercase letters, digits and '_', ending in '_', not starting with sqlite_, pg_ or plinth_"
    )]
    BadPrefix { prefix: String },
    #[error("comments are not allowed in plugin SQL; pass text as a parameter")]
    Comment,
    #[error(
        "control character U+{code:04X} at byte {offset}: plugin SQL may contain tabs and newlines only; pass other text as a parameter"
    )]
    ControlCharacter { code: u32, offset: usize },
    #[error(
        "the statement is {bytes} bytes, more than the {limit} allowed; pass data as parameters or split it"
    )]
    TooLarge { bytes: usize, limit: usize },
    #[error(
        "the statement nests too deeply (more than {nesting} levels of brackets, or an expression chaining more than {chain} terms); split it up"
    )]
    TooComplex { nesting: usize, chain: usize },
    #[error(
        "the statement defines a CTE named \"{name}\" and writes the table \"{name}\"; the database would write the real table, so rename the CTE"
    )]
    CteShadowsTable { name: String },
    #[error(
        "\"{name}\" differs from the CTE \"{cte}\" only in letter case, which MySQL may resolve either way; spell it exactly as the CTE"
    )]
    AmbiguousName { name: String, cte: String },
    #[error("\"{name}\" is not an ASCII name; plugin tables and CTEs must have ASCII names")]
    NonAsciiName { name: String },
    #[error(
        "this statement is not supported for plugins: the host could not reproduce it exactly from its syntax tree (try plainer syntax, or pass literals as parameters)"
    )]
    NotReproducible,
    #[error("statement {index} of the script: {source}")]
    InScript {
        /// 1-based position of the statement in the script.
        index: usize,
        source: Box<ScopeError>,
    },
}

fn outside_scope_message(table: &str, prefix: &str, access: Access) -> String {
    let lower = table.to_ascii_lowercase();
    let whose = if lower.starts_with("plinth_") {
        "which belongs to the host"
    } else if lower.starts_with("sqlite_")
        || lower.starts_with("pg_")
        || lower == "information_schema"
        || lower == "mysql"
    {
        "which is part of the database's catalog"
    } else {
        "which is not one of this plugin's tables (another plugin's, or nobody's)"
    };
    format!(
        "the statement {access} \"{table}\", {whose}; this plugin's tables start with its prefix \"{prefix}\""
    )
}

/// Checks one statement written by a plugin whose tables start with
/// `table_prefix`, and renders it with its `?` placeholders rewritten for
/// `dialect`.
pub fn check_statement(
    dialect: Dialect,
    table_prefix: &str,
    sql: &str,
    allow: Allow,
) -> Result<CheckedStatement, ScopeError> {
    let prefix = validate_prefix(table_prefix)?;
    check_one(dialect, &prefix, sql, allow, Source::Runtime)
}

/// Checks a migration file: substitutes the literal token `{{prefix}}` with
/// `table_prefix`, splits the script into statements at top-level `;` and
/// checks each one with [`Allow::DmlAndDdl`]. Comments are allowed here (they
/// are dropped by the re-rendering), executable MySQL comments are not.
pub fn check_script(
    dialect: Dialect,
    table_prefix: &str,
    script: &str,
) -> Result<Vec<CheckedStatement>, ScopeError> {
    let prefix = validate_prefix(table_prefix)?;
    let script = script.replace("{{prefix}}", table_prefix);
    lexical::check_text(dialect, &script, Source::Migration, MAX_SCRIPT_BYTES)?;
    let tokens = lexical::tokenize(dialect, &script)?;
    let mut checked = Vec::new();
    for (i, chunk) in lexical::split_script(&script, &tokens)
        .into_iter()
        .enumerate()
    {
        let stmt = check_one(dialect, &prefix, chunk, Allow::DmlAndDdl, Source::Migration)
            .map_err(|e| ScopeError::InScript {
                index: i + 1,
                source: Box::new(e),
            })?;
        checked.push(stmt);
    }
    if checked.is_empty() {
        return Err(ScopeError::Empty);
    }
    Ok(checked)
}

/// The statements of a migration file, split as [`check_script`] splits
/// them but not checked: only for a plugin whose guard a test build has
/// switched off, to prove the database's own wall.
pub fn split_script_unchecked(
    dialect: Dialect,
    table_prefix: &str,
    script: &str,
) -> Result<Vec<String>, ScopeError> {
    let script = script.replace("{{prefix}}", table_prefix);
    let tokens = lexical::tokenize(dialect, &script)?;
    Ok(lexical::split_script(&script, &tokens)
        .into_iter()
        .map(str::to_owned)
        .collect())
}

fn check_one(
    dialect: Dialect,
    prefix: &str,
    sql: &str,
    allow: Allow,
    source: Source,
) -> Result<CheckedStatement, ScopeError> {
    lexical::check_text(dialect, sql, source, MAX_STATEMENT_BYTES)?;
    let tokens = lexical::tokenize(dialect, sql)?;
    let shape = lexical::check_tokens(dialect, &tokens)?;
    let (rewritten, placeholders) = lexical::rewrite_placeholders(dialect, sql, &tokens)?;
    drop(tokens);
    let check = || check_tree(dialect, prefix, &rewritten, placeholders, allow);
    let (sql, kind) = if shape.is_deep() {
        on_deep_stack(check)??
    } else {
        check()?
    };
    Ok(CheckedStatement {
        sql,
        kind,
        placeholders,
    })
}

/// Stack for checking statements whose tree may be deep: the parser, the
/// visitor, the renderer and `Drop` all recurse once per level, and the
/// lexical limits bound the levels to about [`MAX_CHAIN`] + [`MAX_NESTING`].
const DEEP_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Runs `f` on a scoped thread with [`DEEP_STACK_BYTES`] of stack (reserved,
/// touched only as used), whatever stack the caller has.
fn on_deep_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, ScopeError> {
    let too_complex = || ScopeError::TooComplex {
        nesting: MAX_NESTING,
        chain: MAX_CHAIN,
    };
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("sql-guard".to_string())
            .stack_size(DEEP_STACK_BYTES)
            .spawn_scoped(scope, f)
            .map_err(|_| too_complex())?
            .join()
            .map_err(|_| too_complex())
    })
}

/// Parses, checks, renders and reads back one statement; the trees are
/// dropped here too, so all of it runs on the same stack.
fn check_tree(
    dialect: Dialect,
    prefix: &str,
    rewritten: &str,
    placeholders: usize,
    allow: Allow,
) -> Result<(String, StatementKind), ScopeError> {
    let statement = parse_one(dialect, rewritten)?;
    let mut guard = Guard::new(dialect, prefix.to_string(), allow, cte_names(&statement));
    if let ControlFlow::Break(err) = statement.visit(&mut guard) {
        return Err(err);
    }
    if guard.placeholders != placeholders {
        return Err(ScopeError::NotReproducible);
    }
    let sql = statement.to_string();
    // What runs must be what was checked: the rendered text has to read
    // back as the same tree.
    match parse_one(dialect, &sql) {
        Ok(again) if again == statement => {}
        _ => return Err(ScopeError::NotReproducible),
    }
    Ok((sql, guard.kind))
}

fn parse_one(dialect: Dialect, sql: &str) -> Result<Statement, ScopeError> {
    let parse_dialect = sql_dialect(dialect);
    let statements = Parser::new(parse_dialect.as_ref())
        .with_recursion_limit(RECURSION_LIMIT)
        // Keep literals as written: rendering then reproduces them exactly
        // instead of re-escaping decoded text.
        .with_options(ParserOptions::new().with_unescape(false))
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| match e {
            ParserError::RecursionLimitExceeded => ScopeError::TooComplex {
                nesting: MAX_NESTING,
                chain: MAX_CHAIN,
            },
            other => ScopeError::Parse(clean_parser_error(&other.to_string())),
        })?;
    let mut statements = statements.into_iter();
    match (statements.next(), statements.len()) {
        (None, _) => Err(ScopeError::Empty),
        (Some(one), 0) => Ok(one),
        (Some(_), more) => Err(ScopeError::MultipleStatements(more + 1)),
    }
}

// ---------------------------------------------------------------------------
// Prefix, dialects, names
// ---------------------------------------------------------------------------

/// The manifest's table-prefix rule (shape and reserved prefixes), so the
/// guard never accepts a prefix no package could declare.
fn validate_prefix(prefix: &str) -> Result<String, ScopeError> {
    if !plinth_package::manifest::is_plugin_table_prefix(prefix) {
        return Err(ScopeError::BadPrefix {
            prefix: prefix.to_string(),
        });
    }
    Ok(prefix.to_string())
}

fn sql_dialect(dialect: Dialect) -> Box<dyn SqlDialect> {
    match dialect {
        Dialect::Sqlite => Box::new(SQLiteDialect {}),
        Dialect::Postgres => Box::new(PostgreSqlDialect {}),
        Dialect::Mysql => Box::new(MySqlDialect {}),
    }
}

/// The name as the database resolves it: PostgreSQL folds unquoted names
/// to lower case and keeps quoted ones; SQLite and (the safe reading of)
/// MySQL compare ASCII case-insensitively. Callers refuse non-ASCII names
/// first, so ASCII folding is the whole story.
fn fold(dialect: Dialect, ident: &Ident) -> String {
    match dialect {
        Dialect::Postgres if ident.quote_style.is_some() => ident.value.clone(),
        _ => ident.value.to_ascii_lowercase(),
    }
}

fn ascii_name(ident: &Ident) -> Result<(), ScopeError> {
    if ident.value.is_ascii() {
        Ok(())
    } else {
        Err(ScopeError::NonAsciiName {
            name: ident.value.clone(),
        })
    }
}

fn clean_parser_error(msg: &str) -> String {
    msg.strip_prefix("sql parser error: ")
        .unwrap_or(msg)
        .to_string()
}

/// Every CTE name the statement defines, at any level.
fn cte_names(statement: &Statement) -> Vec<Ident> {
    struct Collect(Vec<Ident>);
    impl Visitor for Collect {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            if let Some(with) = &query.with {
                self.0
                    .extend(with.cte_tables.iter().map(|c| c.alias.name.clone()));
            }
            ControlFlow::Continue(())
        }
    }
    let mut collect = Collect(Vec::new());
    let _ = statement.visit(&mut collect);
    collect.0
}

// ---------------------------------------------------------------------------
// The guard
// ---------------------------------------------------------------------------

/// CTE names visible in one query level.
struct CteFrame {
    recursive: bool,
    /// `(body, name)` for each CTE of this level, in order.
    pending: Vec<(*const Query, Ident)>,
    visible: Vec<Ident>,
}

struct Guard {
    dialect: Dialect,
    prefix: String,
    allow: Allow,
    kind: StatementKind,
    frames: Vec<CteFrame>,
    /// Every CTE the statement defines anywhere; no written table may share
    /// a name with one.
    all_ctes: Vec<Ident>,
    /// Relations that are really allowed table-valued function calls.
    function_relations: Vec<*const ObjectName>,
    /// Placeholders seen in the tree, to match the token count.
    placeholders: usize,
}

type Flow = ControlFlow<ScopeError>;

fn check(result: Result<(), ScopeError>) -> Flow {
    match result {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => ControlFlow::Break(e),
    }
}

fn single_ident(name: &ObjectName) -> Result<&Ident, ScopeError> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => Ok(ident),
        [_] => Err(ScopeError::Forbidden {
            what: format!("the computed name {name}"),
        }),
        _ => Err(ScopeError::Qualified {
            name: name.to_string(),
        }),
    }
}

impl Guard {
    fn new(dialect: Dialect, prefix: String, allow: Allow, all_ctes: Vec<Ident>) -> Self {
        Guard {
            dialect,
            prefix,
            allow,
            kind: StatementKind::Read,
            frames: Vec::new(),
            all_ctes,
            function_relations: Vec::new(),
            placeholders: 0,
        }
    }

    /// A real table (never a CTE) the plugin uses: must be its own.
    fn own(&self, name: &ObjectName, access: Access) -> Result<(), ScopeError> {
        let ident = single_ident(name)?;
        ascii_name(ident)?;
        if fold(self.dialect, ident).starts_with(&self.prefix) {
            Ok(())
        } else {
            Err(ScopeError::OutsideScope {
                table: ident.value.clone(),
                prefix: self.prefix.clone(),
                access,
            })
        }
    }

    /// A table the statement writes: its own, and not shadowed by a CTE of
    /// the same name anywhere in the statement (compared case-insensitively
    /// on every dialect, the safe way).
    fn written(&self, name: &ObjectName) -> Result<(), ScopeError> {
        self.own(name, Access::Writes)?;
        let ident = single_ident(name)?;
        if let Some(cte) = self
            .all_ctes
            .iter()
            .find(|c| c.value.eq_ignore_ascii_case(&ident.value))
        {
            return Err(ScopeError::CteShadowsTable {
                name: cte.value.clone(),
            });
        }
        Ok(())
    }

    /// Whether the database resolves `ident` to a visible CTE.
    fn resolves_to_cte(&self, ident: &Ident) -> Result<bool, ScopeError> {
        for cte in self.frames.iter().rev().flat_map(|f| f.visible.iter()) {
            ascii_name(cte)?;
            if fold(self.dialect, cte) == fold(self.dialect, ident) {
                if self.dialect == Dialect::Mysql && cte.value != ident.value {
                    return Err(ScopeError::AmbiguousName {
                        name: ident.value.clone(),
                        cte: cte.value.clone(),
                    });
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A relation the statement reads (or a write target, which is also
    /// checked by [`Guard::written`]).
    fn relation(&self, name: &ObjectName) -> Result<(), ScopeError> {
        let ident = single_ident(name)?;
        ascii_name(ident)?;
        if self.resolves_to_cte(ident)? {
            return Ok(());
        }
        if self.dialect == Dialect::Mysql
            && ident.quote_style.is_none()
            && ident.value.eq_ignore_ascii_case("dual")
        {
            return Ok(());
        }
        self.own(name, Access::Reads)
    }

    fn note(&mut self, kind: StatementKind, what: &str) -> Result<(), ScopeError> {
        if kind == StatementKind::Ddl && self.allow == Allow::Dml {
            return Err(ScopeError::DdlNotAllowed {
                what: what.to_string(),
            });
        }
        self.kind = self.kind.max(kind);
        Ok(())
    }

    fn table_function(&mut self, name: &ObjectName) -> Result<(), ScopeError> {
        let ident = single_ident(name)?;
        if functions::allowed_in_from(self.dialect, &fold(self.dialect, ident)) {
            Ok(())
        } else {
            Err(ScopeError::Forbidden {
                what: format!("the table-valued function {}() in FROM", ident.value),
            })
        }
    }

    fn function(&self, function: &Function) -> Result<(), ScopeError> {
        let ident = single_ident(&function.name)?;
        let folded = fold(self.dialect, ident);
        if self.dialect == Dialect::Postgres
            && functions::POSTGRES_SEQUENCE_FUNCTIONS.contains(&folded.as_str())
        {
            return self.sequence_function(function, &ident.value);
        }
        if functions::allowed(self.dialect, &folded) {
            Ok(())
        } else {
            Err(ScopeError::ForbiddenFunction {
                name: ident.value.clone(),
            })
        }
    }

    /// `nextval('goods_items_id_seq')`: the sequence is named by a plain
    /// string literal under the prefix, nothing computed.
    fn sequence_function(&self, function: &Function, name: &str) -> Result<(), ScopeError> {
        let refused = || ScopeError::Forbidden {
            what: format!(
                "{name}() without a single string literal naming one of this plugin's sequences as its first argument"
            ),
        };
        let FunctionArguments::List(list) = &function.args else {
            return Err(refused());
        };
        let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))) = list.args.first()
        else {
            return Err(refused());
        };
        let Value::SingleQuotedString(sequence) = &v.value else {
            return Err(refused());
        };
        let plain = sequence
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !plain {
            return Err(refused());
        }
        if !sequence.starts_with(&self.prefix) {
            return Err(ScopeError::OutsideScope {
                table: sequence.clone(),
                prefix: self.prefix.clone(),
                access: Access::Writes,
            });
        }
        Ok(())
    }
    fn references_in_column_option(&self, option: &ColumnOption) -> Result<(), ScopeError> {
        if let ColumnOption::ForeignKey { foreign_table, .. } = option {
            self.own(foreign_table, Access::References)?;
        }
        Ok(())
    }

    fn references_in_constraint(&self, constraint: &TableConstraint) -> Result<(), ScopeError> {
        if let TableConstraint::ForeignKey { foreign_table, .. } = constraint {
            self.own(foreign_table, Access::References)?;
        }
        Ok(())
    }

    /// Every table a DELETE removes rows from: the FROM tables (MySQL's
    /// `DELETE FROM a, b USING ...` lists several) and MySQL's named
    /// targets, which may be aliases of FROM or USING tables.
    fn check_delete(&self, delete: &Delete) -> Result<(), ScopeError> {
        let from = match &delete.from {
            FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
        };
        if delete.tables.is_empty() {
            for twj in from {
                self.written_tables(twj, "DELETE")?;
            }
            return Ok(());
        }
        let mut aliases = Vec::new();
        for twj in from.iter().chain(delete.using.iter().flatten()) {
            collect_aliases(twj, &mut aliases);
        }
        for target in &delete.tables {
            let ident = single_ident(target)?;
            match aliases
                .iter()
                .find(|(alias, _)| alias.value.eq_ignore_ascii_case(&ident.value))
            {
                Some((_, table)) => self.written(table)?,
                None => self.written(target)?,
            }
        }
        Ok(())
    }

    /// The tables of an UPDATE or DELETE target list: all written.
    fn written_tables(&self, twj: &TableWithJoins, what: &str) -> Result<(), ScopeError> {
        for factor in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            match factor {
                TableFactor::Table {
                    name, args: None, ..
                } => self.written(name)?,
                _ => {
                    return Err(ScopeError::Forbidden {
                        what: format!("{what} of something other than a plain table ({factor})"),
                    });
                }
            }
        }
        Ok(())
    }

    fn check_statement_node(&mut self, statement: &Statement) -> Result<(), ScopeError> {
        match statement {
            Statement::Query(_) => self.note(StatementKind::Read, "SELECT"),
            Statement::Insert(insert) => {
                match &insert.table {
                    TableObject::TableName(name) => self.written(name)?,
                    TableObject::TableFunction(f) => {
                        return Err(ScopeError::Forbidden {
                            what: format!("INSERT INTO the function {}", f.name),
                        });
                    }
                }
                self.note(StatementKind::Write, "INSERT")
            }
            Statement::Update { table, .. } => {
                self.written_tables(table, "UPDATE")?;
                self.note(StatementKind::Write, "UPDATE")
            }
            Statement::Delete(delete) => {
                self.check_delete(delete)?;
                self.note(StatementKind::Write, "DELETE")
            }
            Statement::CreateTable(ct) => {
                self.note(StatementKind::Ddl, "CREATE TABLE")?;
                self.own(&ct.name, Access::Changes)?;
                for column in &ct.columns {
                    // sqlparser 0.59 reads PostgreSQL's `(LIKE other)` as a
                    // column named LIKE of type `other`; the database would
                    // copy `other`'s definition.
                    if column.name.quote_style.is_none()
                        && column.name.value.eq_ignore_ascii_case("like")
                    {
                        return Err(ScopeError::Forbidden {
                            what: "CREATE TABLE ... (LIKE ...)".to_string(),
                        });
                    }
                    for option in &column.options {
                        self.references_in_column_option(&option.option)?;
                    }
                }
                for constraint in &ct.constraints {
                    self.references_in_constraint(constraint)?;
                }
                if let Some(like) = &ct.like {
                    let (CreateTableLikeKind::Parenthesized(l) | CreateTableLikeKind::Plain(l)) =
                        like;
                    self.own(&l.name, Access::References)?;
                }
                if let Some(clone) = &ct.clone {
                    self.own(clone, Access::References)?;
                }
                for parent in ct.inherits.iter().flatten() {
                    self.own(parent, Access::References)?;
                }
                Ok(())
            }
            Statement::AlterTable {
                name, operations, ..
            } => {
                self.note(StatementKind::Ddl, "ALTER TABLE")?;
                self.own(name, Access::Changes)?;
                for op in operations {
                    self.check_alter_operation(op)?;
                }
                Ok(())
            }
            Statement::RenameTable(renames) => {
                self.note(StatementKind::Ddl, "RENAME TABLE")?;
                for r in renames {
                    self.own(&r.old_name, Access::Changes)?;
                    self.own(&r.new_name, Access::Changes)?;
                }
                Ok(())
            }
            Statement::Drop {
                object_type,
                names,
                table,
                ..
            } => {
                let what = format!("DROP {object_type}");
                match object_type {
                    ObjectType::Table
                    | ObjectType::View
                    | ObjectType::MaterializedView
                    | ObjectType::Index => {}
                    _ => return Err(ScopeError::Forbidden { what }),
                }
                self.note(StatementKind::Ddl, &what)?;
                for n in names.iter().chain(table.iter()) {
                    self.own(n, Access::Changes)?;
                }
                Ok(())
            }
            Statement::CreateIndex(ci) => {
                self.note(StatementKind::Ddl, "CREATE INDEX")?;
                if let Some(name) = &ci.name {
                    self.own(name, Access::Changes)?;
                }
                self.own(&ci.table_name, Access::Changes)
            }
            Statement::CreateView { name, to, .. } => {
                self.note(StatementKind::Ddl, "CREATE VIEW")?;
                self.own(name, Access::Changes)?;
                if let Some(to) = to {
                    self.own(to, Access::Changes)?;
                }
                Ok(())
            }
            Statement::Truncate { table_names, .. } => {
                self.note(StatementKind::Ddl, "TRUNCATE")?;
                for target in table_names {
                    self.written(&target.name)?;
                }
                Ok(())
            }
            other => Err(ScopeError::Forbidden {
                what: statement_label(other),
            }),
        }
    }

    fn check_alter_operation(&self, op: &AlterTableOperation) -> Result<(), ScopeError> {
        use AlterTableOperation as Op;
        match op {
            Op::AddConstraint { constraint, .. } => self.references_in_constraint(constraint),
            Op::AddColumn { column_def, .. } => {
                for option in &column_def.options {
                    self.references_in_column_option(&option.option)?;
                }
                Ok(())
            }
            Op::ChangeColumn { options, .. } | Op::ModifyColumn { options, .. } => {
                for option in options {
                    self.references_in_column_option(option)?;
                }
                Ok(())
            }
            Op::RenameTable { table_name } => {
                let (RenameTableNameKind::As(n) | RenameTableNameKind::To(n)) = table_name;
                self.own(n, Access::Changes)
            }
            Op::DropConstraint { .. }
            | Op::DropColumn { .. }
            | Op::DropPrimaryKey { .. }
            | Op::DropForeignKey { .. }
            | Op::DropIndex { .. }
            | Op::RenameColumn { .. }
            | Op::RenameConstraint { .. }
            | Op::AlterColumn { .. }
            | Op::ValidateConstraint { .. } => Ok(()),
            other => Err(ScopeError::Forbidden {
                what: format!("ALTER TABLE ... {}", first_words(&other.to_string())),
            }),
        }
    }

    /// PostgreSQL `'name'::regclass` and friends look objects up by name
    /// from text; plugins have no use for them.
    fn cast_target(&self, data_type: &DataType) -> Result<(), ScopeError> {
        let name = data_type.to_string();
        if self.dialect == Dialect::Postgres && name.to_ascii_lowercase().starts_with("reg") {
            return Err(ScopeError::Forbidden {
                what: format!("a cast to {name}"),
            });
        }
        Ok(())
    }

    /// Checks what the visitor cannot see from a query's own fields:
    /// `SELECT ... INTO` and `TABLE name`.
    fn check_set_expr(&self, body: &SetExpr) -> Result<(), ScopeError> {
        match body {
            SetExpr::Select(select) if select.into.is_some() => Err(ScopeError::Forbidden {
                what: "SELECT ... INTO".to_string(),
            }),
            SetExpr::SetOperation { left, right, .. } => {
                self.check_set_expr(left)?;
                self.check_set_expr(right)
            }
            SetExpr::Table(_) => Err(ScopeError::Forbidden {
                what: "the TABLE <name> shorthand (write SELECT * FROM <name>)".to_string(),
            }),
            SetExpr::Merge(_) => Err(ScopeError::Forbidden {
                what: "MERGE".to_string(),
            }),
            _ => Ok(()),
        }
    }
}

fn collect_aliases<'a>(twj: &'a TableWithJoins, out: &mut Vec<(&'a Ident, &'a ObjectName)>) {
    for factor in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
        if let TableFactor::Table {
            name,
            alias: Some(alias),
            ..
        } = factor
        {
            out.push((&alias.name, name));
        }
    }
}

/// A short name for a statement kind, e.g. `PRAGMA`, `CREATE FUNCTION`.
fn statement_label(statement: &Statement) -> String {
    let label = match statement {
        Statement::StartTransaction { .. } => "BEGIN/START TRANSACTION",
        Statement::Commit { .. } => "COMMIT",
        Statement::Rollback { .. } => "ROLLBACK",
        Statement::Savepoint { .. } => "SAVEPOINT",
        Statement::ReleaseSavepoint { .. } => "RELEASE SAVEPOINT",
        Statement::Pragma { .. } => "PRAGMA",
        Statement::AttachDatabase { .. } | Statement::AttachDuckDBDatabase { .. } => "ATTACH",
        Statement::DetachDuckDBDatabase { .. } => "DETACH",
        Statement::Set(_) => "SET",
        Statement::Grant { .. } => "GRANT",
        Statement::Revoke { .. } => "REVOKE",
        Statement::Copy { .. } => "COPY",
        Statement::CreateFunction(_) => "CREATE FUNCTION",
        Statement::CreateTrigger(_) => "CREATE TRIGGER",
        Statement::CreateSchema { .. } => "CREATE SCHEMA",
        Statement::CreateDatabase { .. } => "CREATE DATABASE",
        Statement::CreateExtension { .. } => "CREATE EXTENSION",
        Statement::CreateVirtualTable { .. } => "CREATE VIRTUAL TABLE",
        Statement::Load { .. } | Statement::LoadData { .. } => "LOAD",
        Statement::Call(_) => "CALL",
        Statement::Explain { .. } | Statement::ExplainTable { .. } => "EXPLAIN",
        Statement::Vacuum(_) => "VACUUM",
        Statement::Merge { .. } => "MERGE",
        Statement::Use(_) => "USE",
        _ => return camel_to_words(&variant_name(statement)),
    };
    label.to_string()
}

fn variant_name(statement: &Statement) -> String {
    format!("{statement:?}")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

fn camel_to_words(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn first_words(text: &str) -> String {
    text.split_whitespace()
        .take_while(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Visitor for Guard {
    type Break = ScopeError;

    fn pre_visit_statement(&mut self, statement: &Statement) -> Flow {
        check(self.check_statement_node(statement))
    }

    fn pre_visit_query(&mut self, query: &Query) -> Flow {
        if let ControlFlow::Break(e) = check(self.check_set_expr(&query.body)) {
            return ControlFlow::Break(e);
        }
        // A recursive CTE is visible inside its own body.
        if let Some(frame) = self.frames.last_mut()
            && frame.recursive
            && let Some((_, name)) = frame
                .pending
                .iter()
                .find(|(body, _)| std::ptr::eq(*body, query))
        {
            frame.visible.push(name.clone());
        }
        let (recursive, pending) = match &query.with {
            Some(with) => (
                with.recursive,
                with.cte_tables
                    .iter()
                    .map(|cte| (&*cte.query as *const Query, cte.alias.name.clone()))
                    .collect(),
            ),
            None => (false, Vec::new()),
        };
        self.frames.push(CteFrame {
            recursive,
            pending,
            visible: Vec::new(),
        });
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &Query) -> Flow {
        self.frames.pop();
        // A non-recursive CTE becomes visible after its own body.
        if let Some(frame) = self.frames.last_mut()
            && !frame.recursive
            && let Some((_, name)) = frame
                .pending
                .iter()
                .find(|(body, _)| std::ptr::eq(*body, query))
        {
            frame.visible.push(name.clone());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> Flow {
        let result = match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => {
                let r = self.table_function(name);
                if r.is_ok() {
                    self.function_relations.push(name as *const ObjectName);
                }
                r
            }
            TableFactor::Function { name, .. } => self.table_function(name),
            TableFactor::Table { .. }
            | TableFactor::Derived { .. }
            | TableFactor::NestedJoin { .. }
            | TableFactor::UNNEST { .. } => Ok(()),
            TableFactor::JsonTable { .. } if self.dialect == Dialect::Mysql => Ok(()),
            other => Err(ScopeError::Forbidden {
                what: format!("{} in FROM", first_words(&other.to_string())),
            }),
        };
        check(result)
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> Flow {
        if self
            .function_relations
            .iter()
            .any(|p| std::ptr::eq(*p, relation))
        {
            return ControlFlow::Continue(());
        }
        check(self.relation(relation))
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> Flow {
        let result = match expr {
            Expr::Function(function) => self.function(function),
            Expr::Cast { data_type, .. } => self.cast_target(data_type),
            Expr::TypedString(typed) => self.cast_target(&typed.data_type),
            Expr::Prefixed { .. }
            | Expr::Struct { .. }
            | Expr::Dictionary(_)
            | Expr::Map(_)
            | Expr::Lambda(_)
            | Expr::Prior(_)
            | Expr::OuterJoin(_) => Err(ScopeError::Forbidden {
                what: format!("the expression {}", first_words(&expr.to_string())),
            }),
            _ => Ok(()),
        };
        check(result)
    }

    fn pre_visit_value(&mut self, value: &Value) -> Flow {
        if let Value::Placeholder(p) = value {
            self.placeholders += 1;
            let ours = match self.dialect {
                Dialect::Postgres => {
                    p.len() > 1 && p.starts_with('$') && p[1..].bytes().all(|b| b.is_ascii_digit())
                }
                Dialect::Sqlite | Dialect::Mysql => p == "?",
            };
            if !ours {
                return ControlFlow::Break(ScopeError::Placeholder { found: p.clone() });
            }
        }
        ControlFlow::Continue(())
    }
}
