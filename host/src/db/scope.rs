//! The SQL scope guard: decides whether a plugin's SQL statement may run.
//!
//! Plugins run SQL against the host's own database. Each plugin owns the
//! tables whose names start with its table prefix (for example `goods_`) and
//! nothing else. This module owns that rule, and the placeholder contract
//! (plugins write `?`; the host rewrites it for the database's dialect).
//!
//! # Why parsing, not string matching
//!
//! The decision is made on the syntax tree produced by `sqlparser` for the
//! database's own dialect, never by searching the SQL text. Text matching can
//! be defeated by quoting, comments, whitespace, case, nested subqueries,
//! CTEs and a hundred other spellings of the same statement; the parse tree
//! names every relation the statement touches no matter how it was written.
//! If the statement does not parse, it is refused. The SQL that is returned
//! (with rewritten placeholders) is the exact text that was parsed and
//! checked.
//!
//! # Rules
//!
//! * Exactly one statement per [`check_statement`] call (a trailing `;` is
//!   fine). [`check_script`] splits migration files into statements.
//! * Allowed statements: queries (`SELECT`, `WITH`, `UNION`, `VALUES`, ...)
//!   are [`StatementKind::Read`]; `INSERT`/`REPLACE`, `UPDATE`, `DELETE` are
//!   [`StatementKind::Write`]. With [`Allow::DmlAndDdl`] (install hooks and
//!   migration files) also `CREATE`/`ALTER`/`DROP TABLE`, `CREATE`/`DROP
//!   INDEX`, `CREATE`/`DROP VIEW`, MySQL `RENAME TABLE` and `TRUNCATE`, all
//!   [`StatementKind::Ddl`]. Everything else (`PRAGMA`, `ATTACH`, `SET`,
//!   transactions, `GRANT`, `COPY`, `CREATE FUNCTION`/`TRIGGER`/`SCHEMA`,
//!   `EXPLAIN`, `VACUUM`, `CALL`, `LOAD`, ...) is refused, and so is
//!   `SELECT ... INTO`.
//! * Every relation the statement names (FROM, JOIN, subqueries, CTE bodies,
//!   INSERT target and source, UPDATE target and FROM, DELETE FROM/USING and
//!   MySQL multi-table DELETE targets, DDL targets, index and view names,
//!   `RENAME TO` targets, `REFERENCES` targets, `LIKE`/`INHERITS`/`CLONE`
//!   sources) must be a single, unqualified identifier starting with the
//!   table prefix, compared case-insensitively after removing quotes. Names
//!   of CTEs defined by the statement may be used where the database would
//!   resolve them to the CTE. Schema-qualified names are refused.
//! * Table-valued functions in FROM are refused except for a short safe list
//!   that only expands values given in the statement: `json_each` and
//!   `json_tree` (SQLite); `json_each`, `jsonb_each`, `json_each_text`,
//!   `jsonb_each_text`, `json_array_elements`, `jsonb_array_elements`,
//!   `json_array_elements_text`, `jsonb_array_elements_text` (PostgreSQL);
//!   `UNNEST(...)` and MySQL `JSON_TABLE(...)`.
//! * Function deny-list (case-insensitive): any name starting with `pg_`,
//!   `lo_` or `dblink`, any name containing `_to_xml` (`table_to_xml`,
//!   `query_to_xml`, ...), and `load_extension`, `readfile`, `writefile`,
//!   `edit`, `fts3_tokenizer`, `sleep`, `benchmark`, `load_file`,
//!   `current_setting`, `set_config`, `setval`, `sys_exec`, `sys_eval`,
//!   `get_lock`, `release_lock`, `release_all_locks`. Schema-qualified
//!   function names are refused too.
//! * Table prefixes starting with `sqlite_`, `pg_` or `plinth_` are refused:
//!   they would reach the database's catalog or the host's own tables.
//!
//! # Placeholders
//!
//! Plugins write `?` for every parameter; `$1`, `?1`, `:name`, `@name` are
//! refused. For PostgreSQL each `?` becomes `$1`, `$2`, ... in order; SQLite
//! and MySQL keep `?`. The rewrite works on the tokenizer's output, so `?`
//! inside string literals, quoted identifiers and comments is never touched,
//! and the rest of the text is kept byte for byte. Because `?` always means a
//! parameter, PostgreSQL's `?`, `?|` and `?&` JSONB operators are unavailable
//! to plugins: use `jsonb_exists`, `jsonb_exists_any` and `jsonb_exists_all`
//! instead.

use std::ops::ControlFlow;

use sqlparser::ast::{
    AlterTableOperation, ColumnOption, CreateTableLikeKind, Delete, Expr, FromTable, Ident,
    ObjectName, ObjectNamePart, ObjectType, Query, RenameTableNameKind, SetExpr, Statement,
    TableConstraint, TableFactor, TableObject, TableWithJoins, Value, Visit, Visitor,
};
use sqlparser::dialect::{Dialect as SqlDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use super::Dialect;

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
    /// The statement text with placeholders rewritten for the dialect and
    /// any trailing `;` removed. This is exactly the text that was checked.
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

/// Why a statement was refused. The messages are meant for plugin authors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("could not parse the SQL statement: {0}")]
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
    #[error(
        "statement touches table \"{table}\", which is outside this plugin's tables (prefix \"{prefix}\")"
    )]
    OutsideScope { table: String, prefix: String },
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
    #[error("statement {index} of the script: {source}")]
    InScript {
        /// 1-based position of the statement in the script.
        index: usize,
        source: Box<ScopeError>,
    },
}

/// Checks one statement written by a plugin whose tables start with
/// `table_prefix`, and rewrites its `?` placeholders for `dialect`.
pub fn check_statement(
    dialect: Dialect,
    table_prefix: &str,
    sql: &str,
    allow: Allow,
) -> Result<CheckedStatement, ScopeError> {
    let prefix = validate_prefix(table_prefix)?;
    let (rewritten, placeholders) = rewrite_placeholders(dialect, sql)?;
    let parse_dialect = sql_dialect(dialect);
    let statements = Parser::parse_sql(parse_dialect.as_ref(), &rewritten)
        .map_err(|e| ScopeError::Parse(clean_parser_error(&e.to_string())))?;
    let statement = match statements.as_slice() {
        [] => return Err(ScopeError::Empty),
        [one] => one,
        many => return Err(ScopeError::MultipleStatements(many.len())),
    };
    let mut guard = Guard::new(dialect, prefix, allow);
    if let ControlFlow::Break(err) = statement.visit(&mut guard) {
        return Err(err);
    }
    Ok(CheckedStatement {
        sql: rewritten,
        kind: guard.kind,
        placeholders,
    })
}

/// Checks a migration file: substitutes the literal token `{{prefix}}` with
/// `table_prefix`, splits the script into statements at top-level `;` and
/// checks each one with [`Allow::DmlAndDdl`].
pub fn check_script(
    dialect: Dialect,
    table_prefix: &str,
    script: &str,
) -> Result<Vec<CheckedStatement>, ScopeError> {
    validate_prefix(table_prefix)?;
    let script = script.replace("{{prefix}}", table_prefix);
    let tokens = tokenize(dialect, &script)?;
    let offsets = LineOffsets::new(&script);
    let mut checked = Vec::new();
    let mut start = 0usize;
    let mut significant = false;
    let mut chunks = Vec::new();
    for tok in &tokens {
        match tok.token {
            Token::SemiColon => {
                let end = offsets.offset(tok.span.start);
                if significant {
                    chunks.push(&script[start..end]);
                }
                start = offsets.offset(tok.span.end);
                significant = false;
            }
            Token::Whitespace(_) | Token::EOF => {}
            _ => significant = true,
        }
    }
    if significant {
        chunks.push(&script[start..]);
    }
    for (i, chunk) in chunks.into_iter().enumerate() {
        let stmt =
            check_statement(dialect, table_prefix, chunk, Allow::DmlAndDdl).map_err(|e| {
                ScopeError::InScript {
                    index: i + 1,
                    source: Box::new(e),
                }
            })?;
        checked.push(stmt);
    }
    if checked.is_empty() {
        return Err(ScopeError::Empty);
    }
    Ok(checked)
}

// ---------------------------------------------------------------------------
// Prefix, dialects, tokens
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

/// PostgreSQL as the tokenizer sees it, except that `?` is a placeholder
/// instead of the start of a JSONB/geometric operator. sqlparser 0.59's
/// PostgreSQL tokenizer turns `?` into `Token::Question` and also swallows
/// the character after it, so it cannot be used to find placeholders.
/// Everything that decides where string literals, quoted identifiers and
/// comments begin and end is delegated to [`PostgreSqlDialect`].
#[derive(Debug)]
struct PostgresPlaceholderTokens(PostgreSqlDialect);

impl SqlDialect for PostgresPlaceholderTokens {
    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        self.0.identifier_quote_style(identifier)
    }
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.0.is_delimited_identifier_start(ch)
    }
    fn is_identifier_start(&self, ch: char) -> bool {
        self.0.is_identifier_start(ch)
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        self.0.is_identifier_part(ch)
    }
    fn is_custom_operator_part(&self, ch: char) -> bool {
        ch != '?' && self.0.is_custom_operator_part(ch)
    }
    fn supports_unicode_string_literal(&self) -> bool {
        self.0.supports_unicode_string_literal()
    }
    fn supports_nested_comments(&self) -> bool {
        self.0.supports_nested_comments()
    }
    fn supports_string_escape_constant(&self) -> bool {
        self.0.supports_string_escape_constant()
    }
    fn supports_numeric_literal_underscores(&self) -> bool {
        self.0.supports_numeric_literal_underscores()
    }
    fn supports_string_literal_backslash_escape(&self) -> bool {
        self.0.supports_string_literal_backslash_escape()
    }
    fn supports_geometric_types(&self) -> bool {
        false
    }
}

fn tokenize(dialect: Dialect, sql: &str) -> Result<Vec<TokenWithSpan>, ScopeError> {
    let result = match dialect {
        Dialect::Postgres => {
            let d = PostgresPlaceholderTokens(PostgreSqlDialect {});
            Tokenizer::new(&d, sql)
                .with_unescape(false)
                .tokenize_with_location()
        }
        Dialect::Sqlite => Tokenizer::new(&SQLiteDialect {}, sql)
            .with_unescape(false)
            .tokenize_with_location(),
        Dialect::Mysql => Tokenizer::new(&MySqlDialect {}, sql)
            .with_unescape(false)
            .tokenize_with_location(),
    };
    result.map_err(|e| ScopeError::Parse(e.to_string()))
}

/// Converts tokenizer locations (1-based line and character column) into
/// byte offsets of the text.
struct LineOffsets<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineOffsets<'a> {
    fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineOffsets { text, line_starts }
    }

    fn offset(&self, loc: Location) -> usize {
        let Some(line_index) = usize::try_from(loc.line)
            .ok()
            .and_then(|l| l.checked_sub(1))
        else {
            return 0;
        };
        let Some(&line_start) = self.line_starts.get(line_index) else {
            return self.text.len();
        };
        let column = usize::try_from(loc.column).unwrap_or(1).saturating_sub(1);
        self.text[line_start..]
            .char_indices()
            .nth(column)
            .map_or(self.text.len(), |(i, _)| line_start + i)
    }
}

/// Finds the `?` placeholders at token level, refuses other placeholder
/// styles, rewrites `?` to `$n` for PostgreSQL and drops a trailing `;`.
fn rewrite_placeholders(dialect: Dialect, sql: &str) -> Result<(String, usize), ScopeError> {
    let tokens = tokenize(dialect, sql)?;
    let offsets = LineOffsets::new(sql);
    let mut out = String::with_capacity(sql.len() + 8);
    let mut copied_to = 0usize;
    let mut count = 0usize;
    let mut end_of_statement = 0usize;
    let mut seen_semicolon = false;
    for tok in &tokens {
        match &tok.token {
            Token::Whitespace(_) | Token::EOF => continue,
            Token::SemiColon if !seen_semicolon => {
                seen_semicolon = true;
                continue;
            }
            _ => {}
        }
        if seen_semicolon {
            // Something follows the first `;`: keep the whole text and let
            // the parser count the statements.
            end_of_statement = sql.len();
            break;
        }
        let start = offsets.offset(tok.span.start);
        let end = offsets.offset(tok.span.end);
        end_of_statement = end;
        match &tok.token {
            Token::Placeholder(p) if p == "?" => {
                count += 1;
                if dialect == Dialect::Postgres {
                    out.push_str(&sql[copied_to..start]);
                    out.push('$');
                    out.push_str(&count.to_string());
                    copied_to = end;
                }
            }
            Token::Placeholder(p) => {
                return Err(ScopeError::Placeholder { found: p.clone() });
            }
            Token::Colon | Token::AtSign => {
                // `:name` / `@name` parameter styles (SQLite, some drivers).
                if let Some(next) = next_token_after(&tokens, tok)
                    && matches!(next.token, Token::Word(_))
                    && next.span.start == tok.span.end
                    && !is_postgres_slice(dialect, &tokens, tok)
                {
                    return Err(ScopeError::Placeholder {
                        found: format!("{}{}", tok.token, next.token),
                    });
                }
            }
            _ => {}
        }
    }
    if end_of_statement < copied_to {
        end_of_statement = copied_to;
    }
    out.push_str(&sql[copied_to..end_of_statement.max(copied_to)]);
    if out.trim().is_empty() {
        return Err(ScopeError::Empty);
    }
    Ok((out, count))
}

fn next_token_after<'t>(
    tokens: &'t [TokenWithSpan],
    tok: &TokenWithSpan,
) -> Option<&'t TokenWithSpan> {
    let pos = tokens.iter().position(|t| std::ptr::eq(t, tok))?;
    tokens.get(pos + 1)
}

/// `arr[lo:hi]` in PostgreSQL uses a colon directly followed by a word.
fn is_postgres_slice(dialect: Dialect, tokens: &[TokenWithSpan], tok: &TokenWithSpan) -> bool {
    if dialect != Dialect::Postgres || tok.token != Token::Colon {
        return false;
    }
    let Some(pos) = tokens.iter().position(|t| std::ptr::eq(t, tok)) else {
        return false;
    };
    // Inside brackets if the nearest unmatched bracket before us is `[`.
    let mut depth = 0i32;
    for t in tokens[..pos].iter().rev() {
        match t.token {
            Token::RBracket => depth += 1,
            Token::LBracket if depth == 0 => return true,
            Token::LBracket => depth -= 1,
            _ => {}
        }
    }
    false
}

fn clean_parser_error(msg: &str) -> String {
    msg.strip_prefix("sql parser error: ")
        .unwrap_or(msg)
        .to_string()
}

// ---------------------------------------------------------------------------
// The guard
// ---------------------------------------------------------------------------

const SQLITE_TABLE_FUNCTIONS: &[&str] = &["json_each", "json_tree"];
const POSTGRES_TABLE_FUNCTIONS: &[&str] = &[
    "json_each",
    "jsonb_each",
    "json_each_text",
    "jsonb_each_text",
    "json_array_elements",
    "jsonb_array_elements",
    "json_array_elements_text",
    "jsonb_array_elements_text",
];

const DENIED_FUNCTION_PREFIXES: &[&str] = &["pg_", "lo_", "dblink"];
const DENIED_FUNCTIONS: &[&str] = &[
    "load_extension",
    "readfile",
    "writefile",
    "edit",
    "fts3_tokenizer",
    "sleep",
    "benchmark",
    "load_file",
    "current_setting",
    "set_config",
    "query_to_xml",
    "setval",
    "sys_exec",
    "sys_eval",
    "get_lock",
    "release_lock",
    "release_all_locks",
];

fn function_denied(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    DENIED_FUNCTION_PREFIXES.iter().any(|p| name.starts_with(p))
        || name.contains("_to_xml")
        || DENIED_FUNCTIONS.contains(&name.as_str())
}

/// CTE names visible in one query level.
struct CteFrame {
    recursive: bool,
    /// `(body, name)` for each CTE of this level, in order.
    pending: Vec<(*const Query, String)>,
    visible: Vec<String>,
}

struct Guard {
    dialect: Dialect,
    prefix: String,
    allow: Allow,
    kind: StatementKind,
    frames: Vec<CteFrame>,
    /// Relations that are really allowed table-valued function calls.
    function_relations: Vec<*const ObjectName>,
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
    fn new(dialect: Dialect, prefix: String, allow: Allow) -> Self {
        Guard {
            dialect,
            prefix,
            allow,
            kind: StatementKind::Read,
            frames: Vec::new(),
            function_relations: Vec::new(),
        }
    }

    /// A name the plugin creates, drops or references: must be its own.
    fn own(&self, name: &ObjectName) -> Result<(), ScopeError> {
        let ident = single_ident(name)?;
        if ident.value.to_ascii_lowercase().starts_with(&self.prefix) {
            Ok(())
        } else {
            Err(ScopeError::OutsideScope {
                table: ident.value.clone(),
                prefix: self.prefix.clone(),
            })
        }
    }

    fn is_cte(&self, name: &ObjectName) -> bool {
        let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
            return false;
        };
        self.frames.iter().any(|f| {
            f.visible
                .iter()
                .any(|v| v.eq_ignore_ascii_case(&ident.value))
        })
    }

    /// A relation read or written by the statement.
    fn relation(&self, name: &ObjectName) -> Result<(), ScopeError> {
        if self.is_cte(name) {
            return Ok(());
        }
        if self.dialect == Dialect::Mysql
            && let [ObjectNamePart::Identifier(ident)] = name.0.as_slice()
            && ident.quote_style.is_none()
            && ident.value.eq_ignore_ascii_case("dual")
        {
            return Ok(());
        }
        self.own(name)
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
        let lower = ident.value.to_ascii_lowercase();
        let safe = match self.dialect {
            Dialect::Sqlite => SQLITE_TABLE_FUNCTIONS,
            Dialect::Postgres => POSTGRES_TABLE_FUNCTIONS,
            Dialect::Mysql => &[],
        };
        if safe.contains(&lower.as_str()) {
            Ok(())
        } else {
            Err(ScopeError::Forbidden {
                what: format!("the table-valued function {}() in FROM", ident.value),
            })
        }
    }

    fn references_in_column_option(&self, option: &ColumnOption) -> Result<(), ScopeError> {
        if let ColumnOption::ForeignKey { foreign_table, .. } = option {
            self.own(foreign_table)?;
        }
        Ok(())
    }

    fn references_in_constraint(&self, constraint: &TableConstraint) -> Result<(), ScopeError> {
        if let TableConstraint::ForeignKey { foreign_table, .. } = constraint {
            self.own(foreign_table)?;
        }
        Ok(())
    }

    fn check_delete(&self, delete: &Delete) -> Result<(), ScopeError> {
        // MySQL multi-table DELETE names its targets by table name or alias;
        // the visitor does not report them as relations.
        if delete.tables.is_empty() {
            return Ok(());
        }
        let from = match &delete.from {
            FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
        };
        let mut aliases = Vec::new();
        for twj in from.iter().chain(delete.using.iter().flatten()) {
            collect_aliases(twj, &mut aliases);
        }
        for target in &delete.tables {
            let ident = single_ident(target)?;
            if aliases
                .iter()
                .any(|a: &String| a.eq_ignore_ascii_case(&ident.value))
            {
                continue;
            }
            self.own(target)?;
        }
        Ok(())
    }

    fn check_statement_node(&mut self, statement: &Statement) -> Result<(), ScopeError> {
        match statement {
            Statement::Query(_) => self.note(StatementKind::Read, "SELECT"),
            Statement::Insert(insert) => {
                if let TableObject::TableFunction(f) = &insert.table {
                    return Err(ScopeError::Forbidden {
                        what: format!("INSERT INTO the function {}", f.name),
                    });
                }
                self.note(StatementKind::Write, "INSERT")
            }
            Statement::Update { .. } => self.note(StatementKind::Write, "UPDATE"),
            Statement::Delete(delete) => {
                self.check_delete(delete)?;
                self.note(StatementKind::Write, "DELETE")
            }
            Statement::CreateTable(ct) => {
                self.note(StatementKind::Ddl, "CREATE TABLE")?;
                self.own(&ct.name)?;
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
                    self.own(&l.name)?;
                }
                if let Some(clone) = &ct.clone {
                    self.own(clone)?;
                }
                for parent in ct.inherits.iter().flatten() {
                    self.own(parent)?;
                }
                Ok(())
            }
            Statement::AlterTable {
                name, operations, ..
            } => {
                self.note(StatementKind::Ddl, "ALTER TABLE")?;
                self.own(name)?;
                for op in operations {
                    self.check_alter_operation(op)?;
                }
                Ok(())
            }
            Statement::RenameTable(renames) => {
                self.note(StatementKind::Ddl, "RENAME TABLE")?;
                for r in renames {
                    self.own(&r.old_name)?;
                    self.own(&r.new_name)?;
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
                    self.own(n)?;
                }
                Ok(())
            }
            Statement::CreateIndex(ci) => {
                self.note(StatementKind::Ddl, "CREATE INDEX")?;
                if let Some(name) = &ci.name {
                    self.own(name)?;
                }
                self.own(&ci.table_name)
            }
            Statement::CreateView { name, to, .. } => {
                self.note(StatementKind::Ddl, "CREATE VIEW")?;
                self.own(name)?;
                if let Some(to) = to {
                    self.own(to)?;
                }
                Ok(())
            }
            Statement::Truncate { .. } => self.note(StatementKind::Ddl, "TRUNCATE"),
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
                self.own(n)
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

fn collect_aliases(twj: &TableWithJoins, out: &mut Vec<String>) {
    let mut add = |f: &TableFactor| {
        if let TableFactor::Table {
            alias: Some(alias), ..
        } = f
        {
            out.push(alias.name.value.clone());
        }
    };
    add(&twj.relation);
    for join in &twj.joins {
        add(&join.relation);
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
                    .map(|cte| (&*cte.query as *const Query, cte.alias.name.value.clone()))
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
        if let Expr::Function(function) = expr {
            let result = match single_ident(&function.name) {
                Ok(ident) if function_denied(&ident.value) => Err(ScopeError::ForbiddenFunction {
                    name: ident.value.clone(),
                }),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            return check(result);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_value(&mut self, value: &Value) -> Flow {
        if let Value::Placeholder(p) = value {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ALL: [Dialect; 3] = [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql];
    const P: &str = "goods_";

    fn dml(d: Dialect, sql: &str) -> Result<CheckedStatement, ScopeError> {
        check_statement(d, P, sql, Allow::Dml)
    }
    fn ddl(d: Dialect, sql: &str) -> Result<CheckedStatement, ScopeError> {
        check_statement(d, P, sql, Allow::DmlAndDdl)
    }

    #[test]
    fn allowed_dml_in_all_dialects() {
        let cases = [
            ("SELECT * FROM goods_items", StatementKind::Read),
            (
                "SELECT i.id, s.qty FROM goods_items i JOIN goods_stock s ON s.item = i.id LEFT JOIN goods_x x ON x.id = i.id",
                StatementKind::Read,
            ),
            (
                "SELECT * FROM goods_items WHERE id IN (SELECT item FROM goods_stock WHERE qty < 5)",
                StatementKind::Read,
            ),
            (
                "WITH low AS (SELECT item FROM goods_stock WHERE qty < 5) SELECT * FROM goods_items JOIN low ON low.item = goods_items.id",
                StatementKind::Read,
            ),
            (
                "WITH a AS (SELECT 1 AS x), b AS (SELECT x FROM a) SELECT * FROM b",
                StatementKind::Read,
            ),
            (
                "SELECT id FROM goods_a UNION SELECT id FROM goods_b",
                StatementKind::Read,
            ),
            (
                "SELECT * FROM (SELECT id FROM goods_a) AS sub",
                StatementKind::Read,
            ),
            (
                "SELECT EXISTS (SELECT 1 FROM goods_a WHERE goods_a.id = 1)",
                StatementKind::Read,
            ),
            (
                "SELECT count(*), max(id), lower(name), coalesce(name, 'x') FROM goods_items",
                StatementKind::Read,
            ),
            ("SELECT 1", StatementKind::Read),
            (
                "INSERT INTO goods_items (id, name) VALUES (?, ?)",
                StatementKind::Write,
            ),
            (
                "INSERT INTO goods_items (id) SELECT id FROM goods_old",
                StatementKind::Write,
            ),
            (
                "UPDATE goods_items SET name = ? WHERE id = ?",
                StatementKind::Write,
            ),
            (
                "UPDATE goods_items SET qty = (SELECT sum(qty) FROM goods_stock WHERE goods_stock.item = goods_items.id)",
                StatementKind::Write,
            ),
            (
                "DELETE FROM goods_items WHERE id NOT IN (SELECT item FROM goods_stock)",
                StatementKind::Write,
            ),
            ("SELECT * FROM goods_items;", StatementKind::Read),
            ("SELECT * FROM GOODS_Items", StatementKind::Read),
        ];
        for d in ALL {
            for (sql, kind) in cases {
                let c = dml(d, sql).unwrap_or_else(|e| panic!("{d:?}: {sql}: {e}"));
                assert_eq!(c.kind, kind, "{d:?}: {sql}");
            }
        }
    }

    #[test]
    fn dialect_specific_allowed() {
        let cases = [
            (
                Dialect::Postgres,
                "UPDATE goods_a SET x = goods_b.x FROM goods_b WHERE goods_a.id = goods_b.id",
            ),
            (
                Dialect::Sqlite,
                "UPDATE goods_a SET x = goods_b.x FROM goods_b WHERE goods_a.id = goods_b.id",
            ),
            (
                Dialect::Postgres,
                "DELETE FROM goods_a USING goods_b WHERE goods_a.id = goods_b.id",
            ),
            (
                Dialect::Postgres,
                "INSERT INTO goods_a (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET n = goods_a.n + 1 RETURNING id",
            ),
            (
                Dialect::Postgres,
                "WITH gone AS (DELETE FROM goods_a WHERE id = ? RETURNING id) SELECT count(*) FROM gone",
            ),
            (
                Dialect::Postgres,
                "WITH RECURSIVE tree AS (SELECT id FROM goods_cat WHERE parent IS NULL UNION ALL SELECT c.id FROM goods_cat c JOIN tree t ON c.parent = t.id) SELECT * FROM tree",
            ),
            (Dialect::Postgres, "SELECT * FROM \"goods_items\""),
            (Dialect::Sqlite, "SELECT * FROM \"goods_items\""),
            (Dialect::Mysql, "SELECT * FROM `goods_items`"),
            (Dialect::Sqlite, "SELECT * FROM `goods_items`"),
            (
                Dialect::Sqlite,
                "SELECT j.value FROM goods_items, json_each(goods_items.tags) AS j",
            ),
            (Dialect::Postgres, "SELECT * FROM jsonb_each(?::jsonb) e"),
            (Dialect::Postgres, "SELECT * FROM unnest(ARRAY[1, 2]) AS u"),
            (
                Dialect::Mysql,
                "INSERT INTO goods_a (id) VALUES (1) ON DUPLICATE KEY UPDATE n = n + 1",
            ),
            (Dialect::Mysql, "REPLACE INTO goods_a (id) VALUES (1)"),
            (
                Dialect::Mysql,
                "DELETE t1 FROM goods_a t1 JOIN goods_b t2 ON t1.id = t2.id",
            ),
            (Dialect::Mysql, "SELECT 1 FROM DUAL"),
            (
                Dialect::Sqlite,
                "INSERT OR REPLACE INTO goods_a (id) VALUES (1)",
            ),
            (Dialect::Postgres, "SELECT (ARRAY[1,2,3])[1:2], 'a' :: text"),
        ];
        for (d, sql) in cases {
            dml(d, sql).unwrap_or_else(|e| panic!("{d:?}: {sql}: {e}"));
        }
    }

    #[test]
    fn refused_other_tables_everywhere() {
        let cases = [
            "SELECT * FROM plinth_users",
            "SELECT * FROM goods_a JOIN plinth_users u ON u.id = goods_a.owner",
            "SELECT * FROM goods_a WHERE owner IN (SELECT id FROM plinth_users)",
            "SELECT (SELECT name FROM plinth_users LIMIT 1) FROM goods_a",
            "WITH x AS (SELECT * FROM plinth_users) SELECT * FROM x",
            "INSERT INTO goods_a (id) SELECT id FROM plinth_users",
            "INSERT INTO plinth_users (id) VALUES (1)",
            "UPDATE plinth_users SET name = 'x'",
            "DELETE FROM plinth_users",
            "SELECT * FROM goods_a UNION SELECT * FROM plinth_users",
            "SELECT * FROM (SELECT * FROM plinth_users) AS goods_a",
            "SELECT * FROM sqlite_master",
            "SELECT * FROM hello_items",
            "SELECT * FROM goodsitems",
            "SELECT * FROM \"plinth_users\"",
        ];
        for d in ALL {
            for sql in cases {
                match dml(d, sql) {
                    Err(ScopeError::OutsideScope { prefix, .. }) => assert_eq!(prefix, P),
                    other => panic!("{d:?}: {sql}: expected OutsideScope, got {other:?}"),
                }
            }
        }
        let specific = [
            (
                Dialect::Postgres,
                "UPDATE goods_a SET x = 1 FROM plinth_b WHERE goods_a.id = plinth_b.id",
            ),
            (
                Dialect::Sqlite,
                "UPDATE goods_a SET x = 1 FROM plinth_b WHERE goods_a.id = plinth_b.id",
            ),
            (
                Dialect::Postgres,
                "DELETE FROM goods_a USING plinth_b WHERE goods_a.id = plinth_b.id",
            ),
            (
                Dialect::Mysql,
                "DELETE FROM goods_a USING goods_a JOIN plinth_b ON goods_a.id = plinth_b.id",
            ),
            (
                Dialect::Mysql,
                "DELETE plinth_b FROM goods_a JOIN goods_c ON goods_a.id = goods_c.id",
            ),
            (Dialect::Mysql, "SELECT * FROM `plinth_users`"),
            (
                Dialect::Postgres,
                "WITH gone AS (DELETE FROM plinth_users RETURNING id) SELECT * FROM gone",
            ),
            // A CTE is not visible inside its own (non-recursive) body, so the
            // inner name is the real table.
            (
                Dialect::Postgres,
                "WITH plinth_users AS (SELECT * FROM plinth_users) SELECT * FROM plinth_users",
            ),
            // A CTE defined in a subquery does not cover the outer query.
            (
                Dialect::Postgres,
                "SELECT * FROM (WITH plinth_users AS (SELECT 1) SELECT * FROM plinth_users) a, plinth_users",
            ),
            // Nor an earlier sibling CTE, even with RECURSIVE.
            (
                Dialect::Mysql,
                "WITH RECURSIVE a AS (SELECT * FROM plinth_users), plinth_users AS (SELECT 1) SELECT * FROM a",
            ),
        ];
        for (d, sql) in specific {
            assert!(
                matches!(dml(d, sql), Err(ScopeError::OutsideScope { .. })),
                "{d:?}: {sql}: {:?}",
                dml(d, sql)
            );
        }
    }

    #[test]
    fn refused_qualified_names() {
        let cases = [
            (Dialect::Sqlite, "SELECT * FROM main.goods_items"),
            (Dialect::Sqlite, "SELECT * FROM temp.goods_items"),
            (Dialect::Postgres, "SELECT * FROM public.goods_items"),
            (Dialect::Postgres, "SELECT * FROM information_schema.tables"),
            (Dialect::Postgres, "SELECT * FROM pg_catalog.pg_user"),
            (Dialect::Mysql, "SELECT * FROM otherdb.goods_items"),
            (Dialect::Mysql, "SELECT * FROM information_schema.tables"),
            (
                Dialect::Postgres,
                "INSERT INTO public.goods_items (id) VALUES (1)",
            ),
            (Dialect::Postgres, "SELECT public.my_func(1)"),
            (Dialect::Postgres, "SELECT pg_catalog.now()"),
        ];
        for (d, sql) in cases {
            assert!(
                matches!(dml(d, sql), Err(ScopeError::Qualified { .. })),
                "{d:?}: {sql}: {:?}",
                dml(d, sql)
            );
        }
    }

    #[test]
    fn refused_statement_kinds() {
        let cases = [
            (Dialect::Sqlite, "PRAGMA writable_schema = 1", "PRAGMA"),
            (Dialect::Sqlite, "PRAGMA table_info('goods_a')", "PRAGMA"),
            (
                Dialect::Sqlite,
                "ATTACH DATABASE '/tmp/x.db' AS x",
                "ATTACH",
            ),
            (Dialect::Sqlite, "BEGIN", "BEGIN"),
            (Dialect::Sqlite, "COMMIT", "COMMIT"),
            (Dialect::Postgres, "ROLLBACK", "ROLLBACK"),
            (Dialect::Postgres, "SAVEPOINT a", "SAVEPOINT"),
            (Dialect::Postgres, "SET search_path = evil", "SET"),
            (Dialect::Mysql, "SET @x = 1", "SET"),
            (
                Dialect::Postgres,
                "GRANT SELECT ON goods_a TO public",
                "GRANT",
            ),
            (
                Dialect::Postgres,
                "REVOKE SELECT ON goods_a FROM public",
                "REVOKE",
            ),
            (Dialect::Postgres, "COPY goods_a FROM '/etc/passwd'", "COPY"),
            (
                Dialect::Postgres,
                "CREATE FUNCTION goods_f() RETURNS int AS 'select 1' LANGUAGE sql",
                "CREATE FUNCTION",
            ),
            (Dialect::Postgres, "CREATE SCHEMA goods_s", "CREATE SCHEMA"),
            (
                Dialect::Postgres,
                "CREATE EXTENSION dblink",
                "CREATE EXTENSION",
            ),
            (
                Dialect::Mysql,
                "CREATE DATABASE goods_db",
                "CREATE DATABASE",
            ),
            (
                Dialect::Postgres,
                "EXPLAIN SELECT * FROM goods_a",
                "EXPLAIN",
            ),
            (
                Dialect::Sqlite,
                "EXPLAIN QUERY PLAN SELECT * FROM goods_a",
                "EXPLAIN",
            ),
            (Dialect::Sqlite, "VACUUM", "VACUUM"),
            (Dialect::Postgres, "CALL goods_proc()", "CALL"),
            (
                Dialect::Postgres,
                "SELECT * INTO goods_copy FROM goods_a",
                "SELECT ... INTO",
            ),
            (
                Dialect::Sqlite,
                "CREATE VIRTUAL TABLE goods_fts USING fts5(body)",
                "CREATE VIRTUAL TABLE",
            ),
            (Dialect::Postgres, "DROP SCHEMA public", "DROP SCHEMA"),
            (
                Dialect::Postgres,
                "SELECT * FROM generate_series(1, 10)",
                "generate_series",
            ),
            (
                Dialect::Sqlite,
                "SELECT * FROM pragma_table_info('goods_a')",
                "pragma_table_info",
            ),
            (Dialect::Mysql, "SELECT * FROM json_each('[]')", "json_each"),
        ];
        for (d, sql, what_contains) in cases {
            for allow in [Allow::Dml, Allow::DmlAndDdl] {
                match check_statement(d, P, sql, allow) {
                    Err(e @ ScopeError::Forbidden { .. }) => {
                        let msg = e.to_string();
                        assert!(msg.contains(what_contains), "{d:?}: {sql}: {msg}");
                        assert!(msg.ends_with("is not allowed for plugins"), "{msg}");
                    }
                    Err(ScopeError::Parse(_)) if sql.starts_with("PRAGMA table_info") => {}
                    other => panic!("{d:?}: {sql}: expected Forbidden, got {other:?}"),
                }
            }
        }
    }

    #[test]
    fn error_messages_read_well() {
        let e = dml(Dialect::Sqlite, "SELECT * FROM plinth_users").unwrap_err();
        assert_eq!(
            e.to_string(),
            "statement touches table \"plinth_users\", which is outside this plugin's tables (prefix \"goods_\")"
        );
        let e = dml(Dialect::Sqlite, "PRAGMA writable_schema = 1").unwrap_err();
        assert_eq!(e.to_string(), "PRAGMA is not allowed for plugins");
        let e = dml(Dialect::Sqlite, "SELECT 1; SELECT 2").unwrap_err();
        assert_eq!(e.to_string(), "only one statement per call (found 2)");
        let e = dml(Dialect::Postgres, "SELECT * FROM public.goods_a").unwrap_err();
        assert!(
            e.to_string()
                .contains("\"public.goods_a\" is a qualified name"),
            "{e}"
        );
        let e = dml(Dialect::Sqlite, "CREATE TABLE goods_a (id INT)").unwrap_err();
        assert!(
            e.to_string().starts_with("CREATE TABLE changes the schema"),
            "{e}"
        );
    }

    #[test]
    fn statement_count() {
        for d in ALL {
            assert_eq!(
                dml(d, "SELECT 1; SELECT 2"),
                Err(ScopeError::MultipleStatements(2))
            );
            assert_eq!(
                dml(d, "SELECT 1; DELETE FROM plinth_users; SELECT 3"),
                Err(ScopeError::MultipleStatements(3))
            );
            assert_eq!(dml(d, ""), Err(ScopeError::Empty));
            assert_eq!(dml(d, "  ;  "), Err(ScopeError::Empty));
            assert_eq!(dml(d, "-- nothing\n"), Err(ScopeError::Empty));
            let c = dml(d, "SELECT 1 ;  ").unwrap();
            assert_eq!(c.sql, "SELECT 1");
            assert!(matches!(dml(d, "SELEC 1"), Err(ScopeError::Parse(_))));
        }
    }

    #[test]
    fn ddl_only_with_ddl_allowance() {
        let cases = [
            (
                Dialect::Sqlite,
                "CREATE TABLE goods_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
            ),
            (
                Dialect::Postgres,
                "CREATE TABLE IF NOT EXISTS goods_items (id BIGSERIAL PRIMARY KEY, cat INT REFERENCES goods_cat(id))",
            ),
            (
                Dialect::Mysql,
                "CREATE TABLE goods_items (id INT AUTO_INCREMENT PRIMARY KEY, cat INT, FOREIGN KEY (cat) REFERENCES goods_cat(id))",
            ),
            (
                Dialect::Postgres,
                "CREATE TABLE goods_copy AS SELECT * FROM goods_items",
            ),
            (
                Dialect::Sqlite,
                "ALTER TABLE goods_items ADD COLUMN qty INTEGER DEFAULT 0",
            ),
            (
                Dialect::Sqlite,
                "ALTER TABLE goods_items RENAME TO goods_things",
            ),
            (
                Dialect::Postgres,
                "ALTER TABLE goods_items ADD CONSTRAINT fk_cat FOREIGN KEY (cat) REFERENCES goods_cat(id)",
            ),
            (
                Dialect::Postgres,
                "ALTER TABLE goods_items ALTER COLUMN name SET NOT NULL",
            ),
            (
                Dialect::Mysql,
                "ALTER TABLE goods_items MODIFY COLUMN name VARCHAR(200)",
            ),
            (Dialect::Sqlite, "DROP TABLE goods_items"),
            (Dialect::Postgres, "DROP TABLE IF EXISTS goods_a, goods_b"),
            (
                Dialect::Sqlite,
                "CREATE INDEX goods_items_name ON goods_items (name)",
            ),
            (
                Dialect::Postgres,
                "CREATE UNIQUE INDEX goods_items_name ON goods_items (lower(name))",
            ),
            (
                Dialect::Mysql,
                "CREATE INDEX goods_items_name ON goods_items (name)",
            ),
            (Dialect::Sqlite, "DROP INDEX goods_items_name"),
            (Dialect::Mysql, "DROP INDEX goods_items_name ON goods_items"),
            (
                Dialect::Sqlite,
                "CREATE VIEW goods_low AS SELECT * FROM goods_items WHERE qty < 5",
            ),
            (Dialect::Postgres, "DROP VIEW goods_low"),
            (Dialect::Postgres, "TRUNCATE goods_items"),
            (Dialect::Mysql, "RENAME TABLE goods_a TO goods_b"),
        ];
        for (d, sql) in cases {
            assert!(
                matches!(dml(d, sql), Err(ScopeError::DdlNotAllowed { .. })),
                "{d:?}: {sql}: {:?}",
                dml(d, sql)
            );
            let c = ddl(d, sql).unwrap_or_else(|e| panic!("{d:?}: {sql}: {e}"));
            assert_eq!(c.kind, StatementKind::Ddl, "{sql}");
        }
    }

    #[test]
    fn ddl_with_wrong_names_refused() {
        let cases = [
            (Dialect::Sqlite, "CREATE TABLE plinth_x (id INT)"),
            (
                Dialect::Postgres,
                "CREATE TABLE goods_a (id INT REFERENCES plinth_users(id))",
            ),
            (
                Dialect::Sqlite,
                "CREATE TABLE goods_a (id INT REFERENCES plinth_users(id))",
            ),
            (
                Dialect::Mysql,
                "CREATE TABLE goods_a (id INT, FOREIGN KEY (id) REFERENCES plinth_users(id))",
            ),
            (
                Dialect::Postgres,
                "CREATE TABLE goods_a (id INT, CONSTRAINT f FOREIGN KEY (id) REFERENCES plinth_users(id))",
            ),
            (
                Dialect::Postgres,
                "CREATE TABLE goods_a AS SELECT * FROM plinth_users",
            ),
            (Dialect::Mysql, "CREATE TABLE goods_a LIKE plinth_users"),
            (
                Dialect::Postgres,
                "CREATE TABLE goods_a (id INT) INHERITS (plinth_users)",
            ),
            (
                Dialect::Postgres,
                "ALTER TABLE plinth_users ADD COLUMN x INT",
            ),
            (
                Dialect::Sqlite,
                "ALTER TABLE goods_a RENAME TO plinth_users",
            ),
            (
                Dialect::Postgres,
                "ALTER TABLE goods_a ADD CONSTRAINT f FOREIGN KEY (id) REFERENCES plinth_users(id)",
            ),
            (
                Dialect::Postgres,
                "ALTER TABLE goods_a ADD COLUMN u INT REFERENCES plinth_users(id)",
            ),
            (Dialect::Sqlite, "DROP TABLE plinth_users"),
            (Dialect::Postgres, "DROP TABLE goods_a, plinth_users"),
            (Dialect::Sqlite, "CREATE INDEX plinth_idx ON goods_a (id)"),
            (
                Dialect::Postgres,
                "CREATE INDEX goods_idx ON plinth_users (id)",
            ),
            (Dialect::Mysql, "CREATE INDEX idx_name ON goods_a (id)"),
            (Dialect::Sqlite, "DROP INDEX plinth_users_email"),
            (Dialect::Mysql, "DROP INDEX goods_idx ON plinth_users"),
            (Dialect::Sqlite, "CREATE VIEW plinth_v AS SELECT 1"),
            (
                Dialect::Sqlite,
                "CREATE VIEW goods_v AS SELECT * FROM plinth_users",
            ),
            (Dialect::Postgres, "DROP VIEW plinth_v"),
            (Dialect::Postgres, "TRUNCATE plinth_users"),
            (Dialect::Mysql, "RENAME TABLE goods_a TO plinth_a"),
        ];
        for (d, sql) in cases {
            assert!(
                matches!(ddl(d, sql), Err(ScopeError::OutsideScope { .. })),
                "{d:?}: {sql}: {:?}",
                ddl(d, sql)
            );
        }
    }

    #[test]
    fn denied_functions() {
        let cases = [
            (Dialect::Sqlite, "SELECT load_extension('/tmp/evil.so')"),
            (Dialect::Sqlite, "SELECT readfile('/etc/passwd')"),
            (Dialect::Sqlite, "SELECT writefile('/tmp/x', 'y')"),
            (Dialect::Sqlite, "SELECT fts3_tokenizer('x')"),
            (
                Dialect::Sqlite,
                "SELECT * FROM goods_a WHERE name = LOAD_EXTENSION('x')",
            ),
            (Dialect::Postgres, "SELECT pg_read_file('/etc/passwd')"),
            (Dialect::Postgres, "SELECT PG_SLEEP(10)"),
            (Dialect::Postgres, "SELECT lo_import('/etc/passwd')"),
            (Dialect::Postgres, "SELECT dblink_connect('x')"),
            (
                Dialect::Postgres,
                "SELECT current_setting('data_directory')",
            ),
            (
                Dialect::Postgres,
                "SELECT set_config('search_path', 'x', false)",
            ),
            (
                Dialect::Postgres,
                "SELECT query_to_xml('select * from plinth_users', true, true, '')",
            ),
            (
                Dialect::Postgres,
                "SELECT table_to_xml('plinth_users', true, true, '')",
            ),
            (Dialect::Postgres, "SELECT setval('plinth_users_id_seq', 1)"),
            (Dialect::Mysql, "SELECT sleep(10)"),
            (Dialect::Mysql, "SELECT benchmark(1000000, md5('x'))"),
            (Dialect::Mysql, "SELECT load_file('/etc/passwd')"),
            (Dialect::Mysql, "SELECT sys_exec('id')"),
            (Dialect::Mysql, "SELECT sys_eval('id')"),
            (Dialect::Mysql, "INSERT INTO goods_a (x) VALUES (sleep(5))"),
            (
                Dialect::Postgres,
                "SELECT * FROM goods_a WHERE id IN (SELECT pg_sleep(1))",
            ),
            (
                Dialect::Sqlite,
                "SELECT * FROM json_each(readfile('/etc/passwd'))",
            ),
        ];
        for (d, sql) in cases {
            assert!(
                matches!(dml(d, sql), Err(ScopeError::ForbiddenFunction { .. })),
                "{d:?}: {sql}: {:?}",
                dml(d, sql)
            );
        }
        let e = dml(Dialect::Sqlite, "SELECT load_extension('x')").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the function load_extension() is not allowed for plugins"
        );
    }

    #[test]
    fn placeholders() {
        let c = dml(
            Dialect::Postgres,
            "SELECT * FROM goods_a WHERE a = ? AND b = '?' AND c = ? AND d = \"goods?\".x -- ?\n",
        );
        // "goods?" is a quoted identifier used as a column qualifier.
        let c = c.unwrap();
        assert_eq!(
            c.sql,
            "SELECT * FROM goods_a WHERE a = $1 AND b = '?' AND c = $2 AND d = \"goods?\".x"
        );
        assert_eq!(c.placeholders, 2);
        assert!(matches!(
            ddl(
                Dialect::Postgres,
                "CREATE TABLE goods_a (LIKE plinth_users)"
            ),
            Err(ScopeError::Forbidden { .. })
        ));

        let cases = [
            (
                Dialect::Postgres,
                "INSERT INTO goods_a (a, b, c) VALUES (?,?,?)",
                "INSERT INTO goods_a (a, b, c) VALUES ($1,$2,$3)",
                3,
            ),
            (
                Dialect::Postgres,
                "SELECT E'it\\'s ?', $$ ? $$, ? FROM goods_a",
                "SELECT E'it\\'s ?', $$ ? $$, $1 FROM goods_a",
                1,
            ),
            (
                Dialect::Postgres,
                "UPDATE goods_a SET n = ?||'x' WHERE id = ?",
                "UPDATE goods_a SET n = $1||'x' WHERE id = $2",
                2,
            ),
            (
                Dialect::Postgres,
                "SELECT 'it''s ?' , ?;",
                "SELECT 'it''s ?' , $1",
                1,
            ),
            (
                Dialect::Sqlite,
                "SELECT * FROM goods_a WHERE a = ? AND b = '?'",
                "SELECT * FROM goods_a WHERE a = ? AND b = '?'",
                1,
            ),
            (
                Dialect::Mysql,
                "SELECT * FROM goods_a WHERE a = ? AND b = '\\'?'",
                "SELECT * FROM goods_a WHERE a = ? AND b = '\\'?'",
                1,
            ),
            (
                Dialect::Mysql,
                "INSERT INTO goods_a VALUES (?, ?)",
                "INSERT INTO goods_a VALUES (?, ?)",
                2,
            ),
            (Dialect::Sqlite, "SELECT 1", "SELECT 1", 0),
            (
                Dialect::Postgres,
                "SELECT 'ü', ? FROM goods_a\nWHERE x = ?",
                "SELECT 'ü', $1 FROM goods_a\nWHERE x = $2",
                2,
            ),
        ];
        for (d, sql, want, n) in cases {
            let c = dml(d, sql).unwrap_or_else(|e| panic!("{d:?}: {sql}: {e}"));
            assert_eq!(c.sql, want, "{d:?}");
            assert_eq!(c.placeholders, n, "{d:?}: {sql}");
        }
    }

    #[test]
    fn other_placeholder_styles_refused() {
        let cases = [
            (Dialect::Postgres, "SELECT * FROM goods_a WHERE id = $1"),
            (Dialect::Sqlite, "SELECT * FROM goods_a WHERE id = ?1"),
            (Dialect::Sqlite, "SELECT * FROM goods_a WHERE id = :id"),
            (Dialect::Sqlite, "SELECT * FROM goods_a WHERE id = @id"),
            (Dialect::Sqlite, "SELECT * FROM goods_a WHERE id = $id"),
            (Dialect::Postgres, "SELECT * FROM goods_a WHERE id = :id"),
            (Dialect::Mysql, "SELECT * FROM goods_a WHERE id = :id"),
            (Dialect::Postgres, "SELECT * FROM goods_a WHERE id = ?1"),
        ];
        for (d, sql) in cases {
            match dml(d, sql) {
                Err(e @ ScopeError::Placeholder { .. }) => {
                    assert!(e.to_string().contains("write ? for every parameter"), "{e}");
                }
                other => panic!("{d:?}: {sql}: expected Placeholder, got {other:?}"),
            }
        }
    }

    #[test]
    fn postgres_jsonb_question_operators_unavailable() {
        // `?` is always a parameter, so the JSONB operator spelling cannot
        // be used; the statement is refused rather than misread.
        for sql in [
            "SELECT * FROM goods_a WHERE data ? 'k'",
            "SELECT * FROM goods_a WHERE data ?| array['a']",
            "SELECT * FROM goods_a WHERE data ?& array['a']",
        ] {
            assert!(dml(Dialect::Postgres, sql).is_err(), "{sql}");
        }
        // The function forms work.
        dml(
            Dialect::Postgres,
            "SELECT * FROM goods_a WHERE jsonb_exists(data, ?)",
        )
        .unwrap();
    }

    #[test]
    fn scripts_split_and_substitute_prefix() {
        let script = "-- create the tables\n\
            CREATE TABLE {{prefix}}items (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT 'a;b');\n\
            CREATE INDEX {{prefix}}items_name ON {{prefix}}items (name);\n\
            INSERT INTO {{prefix}}items (id, name) VALUES (1, 'first; really');\n\
            ;\n\
            /* trailing comment */";
        for d in ALL {
            let out = check_script(d, P, script).unwrap_or_else(|e| panic!("{d:?}: {e}"));
            assert_eq!(out.len(), 3, "{d:?}");
            assert!(
                out[0].sql.contains("CREATE TABLE goods_items"),
                "{}",
                out[0].sql
            );
            assert_eq!(out[0].kind, StatementKind::Ddl);
            assert_eq!(
                out[1].sql.trim(),
                "CREATE INDEX goods_items_name ON goods_items (name)"
            );
            assert_eq!(out[2].kind, StatementKind::Write);
            assert!(out[2].sql.contains("'first; really'"));
        }
        let bad = "CREATE TABLE {{prefix}}a (id INT);\nSELECT * FROM plinth_users;";
        match check_script(Dialect::Sqlite, P, bad) {
            Err(e @ ScopeError::InScript { index: 2, .. }) => {
                assert!(
                    e.to_string().starts_with(
                        "statement 2 of the script: statement touches table \"plinth_users\""
                    ),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            check_script(Dialect::Sqlite, P, " -- nothing\n"),
            Err(ScopeError::Empty)
        );
        assert!(matches!(
            check_script(
                Dialect::Sqlite,
                P,
                "PRAGMA foreign_keys = OFF; CREATE TABLE goods_a (id INT)"
            ),
            Err(ScopeError::InScript { index: 1, .. })
        ));
    }

    #[test]
    fn bad_or_reserved_prefixes_refused() {
        for prefix in [
            "", "goods", "Goods_", "pg_", "sqlite_", "plinth_", "1x_", "goods-_",
        ] {
            assert!(
                matches!(
                    check_statement(Dialect::Sqlite, prefix, "SELECT 1", Allow::Dml),
                    Err(ScopeError::BadPrefix { .. })
                ),
                "{prefix}"
            );
        }
        check_statement(
            Dialect::Sqlite,
            "goods_acme_",
            "SELECT * FROM goods_acme_x",
            Allow::Dml,
        )
        .unwrap();
    }
}
