//! The guard's checks on the text and its tokens, before anything is parsed.
//!
//! These refuse what the guard might read differently from the database
//! (comments, executable comments, NUL and other control characters) and
//! what could make the parser, the visitor or dropping the tree recurse
//! without bound (deep nesting, long left-deep operator chains). Every check
//! here is a single linear pass with no recursion, so no statement can
//! overflow the stack or take quadratic time before it is refused. The
//! placeholder rewrite and the split of migration scripts into statements
//! live here too: they work on the same tokens.

use sqlparser::dialect::{Dialect as SqlDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use super::{Dialect, ScopeError};

/// Longest statement a plugin may send, in bytes.
pub const MAX_STATEMENT_BYTES: usize = 64 * 1024;
/// Longest migration file, in bytes (each statement in it is also held to
/// [`MAX_STATEMENT_BYTES`]).
pub const MAX_SCRIPT_BYTES: usize = 1024 * 1024;
/// Deepest nesting of `(`, `[` and `{` in a statement.
pub const MAX_NESTING: usize = 32;
/// Most tokens one expression may chain without a comma, counting the
/// chains of every group nested inside it. This bounds the depth of the
/// syntax tree a left-deep chain like `1+1+1+...` or `a IS NULL IS NULL ...`
/// builds, which the parser makes without recursing but the visitor, the
/// renderer and `Drop` walk recursively.
pub const MAX_CHAIN: usize = 1000;

/// Where the text comes from: runtime SQL or a (signed) migration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// `sql.query`/`sql.execute` and the install hook: no comments, no CR.
    Runtime,
    /// A migration file: comments and CRLF line ends are fine, executable
    /// MySQL comments are not.
    Migration,
}

/// Size, control characters and comments, on the raw text. Comment openers
/// are refused wherever they appear, inside string literals too: deciding
/// whether `/*` is inside a literal is exactly where the guard's tokenizer
/// and the server's have disagreed, and text belongs in a bound parameter.
pub(super) fn check_text(
    dialect: Dialect,
    text: &str,
    source: Source,
    max_bytes: usize,
) -> Result<(), ScopeError> {
    if text.len() > max_bytes {
        return Err(ScopeError::TooLarge {
            bytes: text.len(),
            limit: max_bytes,
        });
    }
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        let allowed_control = match c {
            '\t' | '\n' => true,
            // A lone CR ends a MySQL comment where the guard may not see
            // one; CRLF line ends in migration files are ordinary.
            '\r' => source == Source::Migration && bytes.get(i + 1) == Some(&b'\n'),
            _ => false,
        };
        if c.is_control() && !allowed_control {
            return Err(ScopeError::ControlCharacter {
                code: u32::from(c),
                offset: i,
            });
        }
    }
    if contains(bytes, b"/*!") || contains(bytes, b"/*M!") {
        return Err(ScopeError::Forbidden {
            what: "a MySQL executable comment (/*! ... */ or /*M! ... */)".to_string(),
        });
    }
    if source == Source::Runtime
        && (contains(bytes, b"--")
            || contains(bytes, b"/*")
            || (dialect == Dialect::Mysql && bytes.contains(&b'#')))
    {
        return Err(ScopeError::Comment);
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Nesting depth and chain length, by one pass over the tokens. Also
/// refuses MySQL's file words outright, whatever the parser would make of
/// them (`LOAD DATA ... INFILE` is caught by its `INFILE`; `LOAD_FILE()` is
/// off the function allow-list). Returns the shape found, so the caller can
/// give deep statements a deep stack.
pub(super) fn check_tokens(
    dialect: Dialect,
    tokens: &[TokenWithSpan],
) -> Result<Shape, ScopeError> {
    let mut shape = Shape::default();
    // One frame per open group: tokens in the current comma-separated item
    // and the longest item so far.
    let mut frames: Vec<(usize, usize)> = vec![(0, 0)];
    let too_deep = || ScopeError::TooComplex {
        nesting: MAX_NESTING,
        chain: MAX_CHAIN,
    };
    for tok in tokens {
        match &tok.token {
            Token::Whitespace(_) | Token::EOF => continue,
            Token::Word(w) if dialect == Dialect::Mysql && w.quote_style.is_none() => {
                let upper = w.value.to_ascii_uppercase();
                if matches!(upper.as_str(), "OUTFILE" | "DUMPFILE" | "INFILE") {
                    return Err(ScopeError::Forbidden {
                        what: format!("{upper} (file access)"),
                    });
                }
            }
            _ => {}
        }
        match &tok.token {
            Token::LParen | Token::LBracket | Token::LBrace => {
                bump(&mut frames, 1).ok_or_else(too_deep)?;
                frames.push((0, 0));
                if frames.len() > MAX_NESTING + 1 {
                    return Err(too_deep());
                }
                shape.nesting = shape.nesting.max(frames.len() - 1);
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                if frames.len() > 1 {
                    let (current, longest) = frames.pop().unwrap_or_default();
                    // The group's depth counts towards the item it is in.
                    bump(&mut frames, current.max(longest) + 1).ok_or_else(too_deep)?;
                }
            }
            Token::Comma | Token::SemiColon => {
                if let Some(top) = frames.last_mut() {
                    top.1 = top.1.max(top.0);
                    top.0 = 0;
                }
            }
            _ => {
                bump(&mut frames, 1).ok_or_else(too_deep)?;
            }
        }
        if let Some(top) = frames.last() {
            shape.chain = shape.chain.max(top.0);
        }
    }
    Ok(shape)
}

/// How deep a statement that passed [`check_tokens`] may make its tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Shape {
    pub(super) nesting: usize,
    pub(super) chain: usize,
}

impl Shape {
    /// Whether walking the tree might need more stack than an ordinary
    /// thread has (debug builds use several KiB per level).
    pub(super) fn is_deep(self) -> bool {
        self.nesting > 8 || self.chain > 100
    }
}

fn bump(frames: &mut [(usize, usize)], by: usize) -> Option<()> {
    let top = frames.last_mut()?;
    top.0 += by;
    (top.0 <= MAX_CHAIN).then_some(())
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

pub(super) fn tokenize(dialect: Dialect, sql: &str) -> Result<Vec<TokenWithSpan>, ScopeError> {
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
/// byte offsets of the text. Locations must be asked for in order; each call
/// walks on from the previous one, so a whole pass is linear in the text
/// (a 60 KB single-line statement would otherwise cost a scan per token).
pub(super) struct Offsets<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    line: u64,
    column: u64,
    byte: usize,
}

impl<'a> Offsets<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Offsets {
            text,
            line_starts,
            line: 1,
            column: 1,
            byte: 0,
        }
    }

    pub(super) fn offset(&mut self, loc: Location) -> usize {
        if loc.line != self.line || loc.column < self.column {
            let Some(&start) = usize::try_from(loc.line)
                .ok()
                .and_then(|l| l.checked_sub(1))
                .and_then(|i| self.line_starts.get(i))
            else {
                return self.text.len();
            };
            self.line = loc.line;
            self.column = 1;
            self.byte = start;
        }
        let mut chars = self.text[self.byte..].chars();
        while self.column < loc.column {
            match chars.next() {
                Some(c) => {
                    self.byte += c.len_utf8();
                    self.column += 1;
                }
                None => return self.text.len(),
            }
        }
        self.byte
    }
}

/// Finds the `?` placeholders at token level, refuses other placeholder
/// styles, rewrites `?` to `$n` for PostgreSQL and drops a trailing `;`.
pub(super) fn rewrite_placeholders(
    dialect: Dialect,
    sql: &str,
    tokens: &[TokenWithSpan],
) -> Result<(String, usize), ScopeError> {
    let mut offsets = Offsets::new(sql);
    let mut out = String::with_capacity(sql.len() + 8);
    let mut copied_to = 0usize;
    let mut count = 0usize;
    let mut end_of_statement = 0usize;
    let mut seen_semicolon = false;
    // Open `[` minus `]`, for PostgreSQL's `arr[lo:hi]` slices.
    let mut brackets = 0usize;
    for (i, tok) in tokens.iter().enumerate() {
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
            Token::LBracket => brackets += 1,
            Token::RBracket => brackets = brackets.saturating_sub(1),
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
                // `:name` / `@name` parameter styles (SQLite, some drivers),
                // except PostgreSQL's `arr[lo:hi]`.
                let slice =
                    dialect == Dialect::Postgres && tok.token == Token::Colon && brackets > 0;
                if let Some(next) = tokens.get(i + 1)
                    && matches!(next.token, Token::Word(_))
                    && next.span.start == tok.span.end
                    && !slice
                {
                    return Err(ScopeError::Placeholder {
                        found: format!("{}{}", tok.token, next.token),
                    });
                }
            }
            _ => {}
        }
    }
    let end_of_statement = end_of_statement.max(copied_to);
    out.push_str(&sql[copied_to..end_of_statement]);
    if out.trim().is_empty() {
        return Err(ScopeError::Empty);
    }
    Ok((out, count))
}

/// Splits a migration script at its top-level `;` into statement texts,
/// skipping empty ones (only whitespace and comments).
pub(super) fn split_script<'s>(script: &'s str, tokens: &[TokenWithSpan]) -> Vec<&'s str> {
    let mut offsets = Offsets::new(script);
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut significant = false;
    for tok in tokens {
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
    chunks
}
