//! The guard's unit tests: every rule on every dialect, the attack classes
//! of issue 14, and the statements the example plugins run.

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
        "the statement reads \"plinth_users\", which belongs to the host; this plugin's tables start with its prefix \"goods_\""
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
        // Comments are refused in runtime SQL, even a lone one.
        assert_eq!(dml(d, "-- nothing\n"), Err(ScopeError::Comment));
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
        "SELECT * FROM goods_a WHERE a = ? AND b = '?' AND c = ? AND d = \"goods?\".x\n",
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
            "INSERT INTO goods_a (a, b, c) VALUES ($1, $2, $3)",
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
            "UPDATE goods_a SET n = $1 || 'x' WHERE id = $2",
            2,
        ),
        (
            Dialect::Postgres,
            "SELECT 'it''s ?' , ?;",
            "SELECT 'it''s ?', $1",
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
            "SELECT 'ü', $1 FROM goods_a WHERE x = $2",
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
            "CREATE INDEX goods_items_name ON goods_items(name)"
        );
        assert_eq!(out[2].kind, StatementKind::Write);
        assert!(out[2].sql.contains("'first; really'"));
    }
    let bad = "CREATE TABLE {{prefix}}a (id INT);\nSELECT * FROM plinth_users;";
    match check_script(Dialect::Sqlite, P, bad) {
        Err(e @ ScopeError::InScript { index: 2, .. }) => {
            assert!(
                e.to_string()
                    .starts_with("statement 2 of the script: the statement reads \"plinth_users\""),
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

// ---------------------------------------------------------------------------
// Issue 14: the attack classes, and the legitimate uses next to them.
// ---------------------------------------------------------------------------

const PROBE: &str = "probe_";

fn probe(d: Dialect, sql: &str) -> Result<CheckedStatement, ScopeError> {
    check_statement(d, PROBE, sql, Allow::Dml)
}

fn probe_ddl(d: Dialect, sql: &str) -> Result<CheckedStatement, ScopeError> {
    check_statement(d, PROBE, sql, Allow::DmlAndDdl)
}

/// Runs `f` on a thread with a small stack: a refusal that recursed over a
/// deep statement would overflow it and abort the test binary.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn quoted(d: Dialect, name: &str) -> String {
    match d {
        Dialect::Mysql => format!("`{name}`"),
        Dialect::Sqlite | Dialect::Postgres => format!("\"{name}\""),
    }
}

#[test]
fn cte_shadowing_a_written_table_is_refused() {
    for d in ALL {
        let mut cases = vec![
            "WITH goods_items AS (SELECT 1 AS a) UPDATE goods_items SET a = 1".to_string(),
            "WITH goods_items AS (SELECT 1 AS a) DELETE FROM goods_items".to_string(),
            "WITH goods_items AS (SELECT 1 AS a) INSERT INTO goods_items (a) SELECT a FROM goods_items"
                .to_string(),
            "WITH RECURSIVE goods_items AS (SELECT 1 AS a) UPDATE goods_items SET a = 1"
                .to_string(),
            "WITH x AS (SELECT 1 AS a), goods_items AS (SELECT 2 AS a) DELETE FROM goods_items"
                .to_string(),
            "WITH GOODS_ITEMS AS (SELECT 1 AS a) UPDATE goods_items SET a = 1".to_string(),
            "WITH goods_items AS (SELECT 1 AS a) UPDATE GOODS_Items SET a = 1".to_string(),
            format!(
                "WITH {} AS (SELECT 1 AS a) UPDATE goods_items SET a = 1",
                quoted(d, "Goods_items")
            ),
            format!(
                "WITH {} AS (SELECT 1 AS a) DELETE FROM {}",
                quoted(d, "goods_items"),
                quoted(d, "goods_items")
            ),
            "WITH plinth_plugins AS (SELECT 1 AS a) DELETE FROM plinth_plugins".to_string(),
            // The plugin's own table shadowed by a CTE: the database would
            // write the real table while the statement reads like a CTE.
            "WITH probe_notes AS (SELECT 1 AS a) UPDATE probe_notes SET a = 1".to_string(),
            "WITH PROBE_NOTES AS (SELECT 1 AS a) DELETE FROM probe_notes".to_string(),
            "WITH probe_notes AS (SELECT 1 AS a) INSERT INTO probe_notes (a) VALUES (1)"
                .to_string(),
        ];
        match d {
            Dialect::Sqlite => cases.extend([
                "WITH goods_items AS (SELECT 1 AS a) INSERT OR REPLACE INTO goods_items (a) VALUES (1)".to_string(),
                "WITH goods_items AS (SELECT 1 AS a) UPDATE OR REPLACE goods_items SET a = 1".to_string(),
                "WITH probe_notes AS (SELECT 1 AS a) INSERT OR REPLACE INTO probe_notes (a) VALUES (1)".to_string(),
                "WITH probe_notes AS (SELECT 1 AS a) UPDATE OR REPLACE probe_notes SET a = 1".to_string(),
                "WITH goods_items AS (SELECT 1 AS a) REPLACE INTO goods_items (a) VALUES (1)".to_string(),
                "WITH probe_notes AS (SELECT 1 AS a) INSERT INTO probe_notes (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2".to_string(),
            ]),
            Dialect::Postgres => cases.extend([
                // Data-modifying CTEs.
                "WITH goods_items AS (SELECT 1 AS a), x AS (UPDATE goods_items SET a = 1 RETURNING a) SELECT * FROM x".to_string(),
                "WITH x AS (DELETE FROM goods_items RETURNING a) SELECT * FROM x".to_string(),
                "WITH probe_notes AS (SELECT 1 AS a), x AS (DELETE FROM probe_notes RETURNING a) SELECT * FROM x".to_string(),
                "WITH \"Goods_items\" AS (SELECT 1 AS a) UPDATE \"goods_items\" SET a = 1".to_string(),
                "WITH probe_notes AS (SELECT 1 AS a) INSERT INTO probe_notes (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2".to_string(),
            ]),
            Dialect::Mysql => cases.extend([
                "WITH goods_items AS (SELECT 1 AS a) REPLACE INTO goods_items (a) VALUES (1)".to_string(),
                "WITH probe_notes AS (SELECT 1 AS a) REPLACE INTO probe_notes (a) VALUES (1)".to_string(),
                "WITH probe_notes AS (SELECT 1 AS a) INSERT INTO probe_notes (a) VALUES (1) ON DUPLICATE KEY UPDATE a = 2".to_string(),
                "WITH goods_items AS (SELECT 1 AS a) UPDATE probe_notes JOIN goods_items ON true SET goods_items.a = 1".to_string(),
                "WITH x AS (SELECT 1 AS a) DELETE g FROM probe_notes p JOIN goods_items g ON p.a = g.a".to_string(),
            ]),
        }
        for sql in &cases {
            match probe(d, sql) {
                Err(ScopeError::CteShadowsTable { .. } | ScopeError::OutsideScope { .. }) => {}
                // Some dialects cannot write after some WITH forms at all.
                Err(ScopeError::Parse(_)) => {}
                other => panic!("{d:?}: {sql}: expected a refusal, got {other:?}"),
            }
        }
        // Shadowing the plugin's own table is refused by the CTE rule, where
        // the dialect parses a write after WITH.
        let sql = "WITH probe_notes AS (SELECT 1 AS a) DELETE FROM probe_notes";
        match probe(d, sql) {
            Err(e @ ScopeError::CteShadowsTable { .. }) => {
                assert!(e.to_string().contains("probe_notes"), "{e}");
            }
            Err(ScopeError::Parse(_)) => {}
            other => panic!("{d:?}: {other:?}"),
        }
        // The same in a migration file.
        let script = "CREATE TABLE {{prefix}}a (a INT);\n\
            WITH goods_items AS (SELECT 1 AS a) DELETE FROM goods_items;";
        assert!(check_script(d, PROBE, script).is_err(), "{d:?}");
    }
}

#[test]
fn cte_reads_stay_allowed() {
    for d in ALL {
        for sql in [
            // A CTE named like a host table that is only read.
            "WITH plinth_plugins AS (SELECT 1 AS a) SELECT a FROM plinth_plugins".to_string(),
            "WITH low AS (SELECT id FROM probe_notes WHERE id < 5) SELECT * FROM probe_notes JOIN low ON low.id = probe_notes.id".to_string(),
            "WITH low AS (SELECT id FROM probe_notes WHERE id < ?) UPDATE probe_notes SET body = ? WHERE id IN (SELECT id FROM low)".to_string(),
            "WITH low AS (SELECT id FROM probe_notes) DELETE FROM probe_notes WHERE id IN (SELECT id FROM low)".to_string(),
            "WITH a AS (SELECT 1 AS x), b AS (SELECT x FROM a) SELECT * FROM b".to_string(),
            format!("WITH {} AS (SELECT 1 AS a) SELECT a FROM {}", quoted(d, "plinth_x"), quoted(d, "plinth_x")),
        ] {
            probe(d, &sql).unwrap_or_else(|e| panic!("{d:?}: {sql}: {e}"));
        }
    }
    // WITH ... write: on the dialects sqlparser reads it for.
    probe(
        Dialect::Postgres,
        "WITH gone AS (DELETE FROM probe_notes WHERE id = ? RETURNING id) SELECT count(*) FROM gone",
    )
    .unwrap();
}

#[test]
fn cte_names_resolve_the_way_the_database_does() {
    // PostgreSQL: an unquoted reference folds to lower case; a quoted CTE
    // name keeps its case, so `"Plinth_plugins"` does not cover
    // `plinth_plugins`, which is the host's real table.
    let refused = probe(
        Dialect::Postgres,
        "WITH \"Plinth_plugins\" AS (SELECT 1 AS a) SELECT a FROM plinth_plugins",
    );
    assert!(
        matches!(refused, Err(ScopeError::OutsideScope { .. })),
        "{refused:?}"
    );
    probe(
        Dialect::Postgres,
        "WITH \"plinth_plugins\" AS (SELECT 1 AS a) SELECT a FROM PLINTH_Plugins",
    )
    .unwrap();
    let refused = probe(
        Dialect::Postgres,
        "WITH plinth_plugins AS (SELECT 1 AS a) SELECT a FROM \"Plinth_plugins\"",
    );
    assert!(
        matches!(refused, Err(ScopeError::OutsideScope { .. })),
        "{refused:?}"
    );
    // A quoted upper-case name is a different table on PostgreSQL.
    assert!(matches!(
        probe(Dialect::Postgres, "SELECT * FROM \"PROBE_notes\""),
        Err(ScopeError::OutsideScope { .. })
    ));
    // SQLite: case-insensitive.
    probe(
        Dialect::Sqlite,
        "WITH \"Plinth_plugins\" AS (SELECT 1 AS a) SELECT a FROM plinth_plugins",
    )
    .unwrap();
    // MySQL: case may or may not matter (lower_case_table_names), so a
    // reference that differs from its CTE only in case is refused.
    let ambiguous = probe(
        Dialect::Mysql,
        "WITH Plinth_plugins AS (SELECT 1 AS a) SELECT a FROM plinth_plugins",
    );
    assert!(
        matches!(ambiguous, Err(ScopeError::AmbiguousName { .. })),
        "{ambiguous:?}"
    );
    probe(
        Dialect::Mysql,
        "WITH plinth_plugins AS (SELECT 1 AS a) SELECT a FROM plinth_plugins",
    )
    .unwrap();
    // Non-ASCII names are refused: case folding differs by server setting.
    for d in ALL {
        assert!(
            matches!(
                probe(d, "SELECT * FROM probe_\u{212a}v"),
                Err(ScopeError::NonAsciiName { .. })
            ),
            "{d:?}"
        );
    }
}

#[test]
fn comments_are_refused_in_runtime_sql() {
    for d in ALL {
        for sql in [
            "SELECT 1 </*'*/ 2, (SELECT plugin FROM plinth_plugins)",
            "SELECT 1 -- x",
            "SELECT 1 --\tx",
            "SELECT body FROM probe_notes --\rDELETE FROM plinth_plugins",
            "SELECT /* x */ 1",
            "SELECT '--'",
            "SELECT 'a /* b'",
            "SELECT 1 /*! UNION SELECT plugin FROM plinth_plugins */",
            "SELECT 1 /*!50000 , plugin FROM plinth_plugins */",
            "SELECT 1 /*M! , 2 */",
        ] {
            match probe(d, sql) {
                Err(ScopeError::Comment) => {}
                Err(ScopeError::Forbidden { what })
                    if sql.contains("/*") && what.contains("executable") => {}
                Err(ScopeError::ControlCharacter { .. }) if sql.contains('\r') => {}
                other => panic!("{d:?}: {sql:?}: expected a comment refusal, got {other:?}"),
            }
        }
    }
    for sql in [
        "SELECT 1 #x",
        "SELECT '#fff'",
        "SELECT body FROM probe_notes WHERE 1=1 # AND 0",
    ] {
        assert_eq!(
            probe(Dialect::Mysql, sql),
            Err(ScopeError::Comment),
            "{sql}"
        );
    }
    let e = probe(Dialect::Sqlite, "SELECT 1 -- x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "comments are not allowed in plugin SQL; pass text as a parameter"
    );
}

#[test]
fn migration_comments_are_dropped_but_executable_comments_refused() {
    for d in ALL {
        let script =
            "-- the notes\r\nCREATE TABLE {{prefix}}a (id INT /* key */);\r\n/* done */\r\n";
        let out = check_script(d, PROBE, script).unwrap_or_else(|e| panic!("{d:?}: {e}"));
        assert_eq!(out.len(), 1);
        assert!(
            !out[0].sql.contains("--") && !out[0].sql.contains("/*"),
            "{}",
            out[0].sql
        );
        for script in [
            "CREATE TABLE {{prefix}}a (id INT) /*! , b INT */;",
            "CREATE TABLE {{prefix}}a (id INT);\n/*!50000 DELETE FROM plinth_plugins */;",
            "CREATE TABLE {{prefix}}a (id INT /*M! , b INT */);",
            "INSERT INTO {{prefix}}a VALUES ('/*!')",
        ] {
            assert!(
                matches!(
                    check_script(d, PROBE, script),
                    Err(ScopeError::Forbidden { .. })
                ),
                "{d:?}: {script}: {:?}",
                check_script(d, PROBE, script)
            );
        }
        // A lone CR or a NUL in a migration is refused; NUL would end the
        // statement early for SQLite.
        for script in [
            "CREATE TABLE {{prefix}}a (id INT);\rDROP TABLE plinth_plugins;",
            "CREATE TABLE {{prefix}}a (id INT);\0DROP TABLE plinth_plugins;",
        ] {
            assert!(
                matches!(
                    check_script(d, PROBE, script),
                    Err(ScopeError::ControlCharacter { .. })
                ),
                "{d:?}"
            );
        }
    }
}

#[test]
fn nul_and_control_characters_are_refused() {
    for d in ALL {
        for sql in [
            "SELECT body FROM probe_notes\0; DELETE FROM plinth_plugins",
            "SELECT 1\0",
            "SELECT '\0'",
            "SELECT 1\r",
            "SELECT\u{b}1",
            "SELECT\u{c}1",
            "SELECT 1\u{1b}",
            "SELECT 1\u{7f}",
            "SELECT '\u{85}'",
        ] {
            assert!(
                matches!(probe(d, sql), Err(ScopeError::ControlCharacter { .. })),
                "{d:?}: {sql:?}: {:?}",
                probe(d, sql)
            );
        }
        // Tabs and newlines are ordinary whitespace.
        probe(d, "SELECT\tbody\nFROM probe_notes").unwrap();
    }
    let e = probe(Dialect::Sqlite, "SELECT 1\0").unwrap_err();
    assert!(e.to_string().contains("U+0000"), "{e}");
}

#[test]
fn oversized_statements_are_refused() {
    for d in ALL {
        let sql = format!("SELECT '{}'", "x".repeat(MAX_STATEMENT_BYTES));
        assert!(
            matches!(probe(d, &sql), Err(ScopeError::TooLarge { .. })),
            "{d:?}"
        );
    }
}

#[test]
fn deep_statements_are_refused_without_recursion() {
    for d in ALL {
        let chain = format!("SELECT {}", vec!["1"; 31_000].join("+"));
        let nested = format!(
            "SELECT * FROM {}probe_notes{}",
            "(SELECT * FROM ".repeat(10_000),
            ")".repeat(10_000)
        );
        // Deep, but under the size limit: refused by the depth check.
        let nested_small = format!(
            "SELECT * FROM {}probe_notes{}",
            "(SELECT * FROM ".repeat(4_000),
            ")".repeat(4_000)
        );
        let parens = format!("SELECT {}1{}", "(".repeat(30_000), ")".repeat(30_000));
        let keywords = format!(
            "SELECT 1 FROM probe_notes WHERE {}",
            vec!["a IS NULL"; 4_000].join(" AND ")
        );
        let unions = vec!["SELECT 1"; 4_000].join(" UNION ");
        let casts = format!("SELECT 1{}", "::int".repeat(10_000));
        for sql in [chain, nested, nested_small, parens, keywords, unions, casts] {
            let result = on_small_stack(move || probe(d, &sql));
            assert!(
                matches!(
                    result,
                    Err(ScopeError::TooComplex { .. } | ScopeError::TooLarge { .. })
                ),
                "{d:?}: {result:?}"
            );
        }
        // A 100,000-term chain is over the size limit before anything else.
        let huge = format!("SELECT {}", vec!["1"; 100_000].join("+"));
        assert!(matches!(
            on_small_stack(move || probe(d, &huge)),
            Err(ScopeError::TooLarge { .. })
        ));
    }
}

#[test]
fn the_deepest_allowed_statements_fit_a_worker_stack() {
    // Just inside the limits, the checked tree is visited, rendered,
    // re-parsed and dropped on a thread with a 2 MiB stack (tokio's
    // default for workers and blocking threads).
    let terms = MAX_CHAIN / 2 - 5;
    for d in ALL {
        let chain = format!("SELECT {} FROM probe_notes", vec!["1"; terms].join("+"));
        let nested = format!(
            "SELECT * FROM {}probe_notes{}",
            "(SELECT * FROM ".repeat(MAX_NESTING / 2 - 1),
            ") AS t".repeat(MAX_NESTING / 2 - 1)
        );
        let parens = format!(
            "SELECT {}{}{} FROM probe_notes",
            "(".repeat(MAX_NESTING),
            vec!["1"; terms - 40].join("+"),
            ")".repeat(MAX_NESTING)
        );
        let mut shapes = vec![chain, nested, parens];
        if d == Dialect::Postgres {
            shapes.push(format!("SELECT 1{}", "::int".repeat(MAX_CHAIN / 2 - 2)));
        }
        for sql in shapes {
            let result = std::thread::Builder::new()
                .stack_size(2 * 1024 * 1024)
                .spawn(move || probe(d, &sql).map(|c| c.kind))
                .unwrap()
                .join()
                .unwrap();
            assert!(result.is_ok(), "{d:?}: {result:?}");
        }
    }
}

#[test]
fn a_long_single_line_statement_is_checked_in_linear_time() {
    // 60 KB on one line: the old location lookup was quadratic here.
    for d in ALL {
        let mut sql = String::from("INSERT INTO probe_notes (id, body) VALUES ");
        let mut i = 0;
        while sql.len() < 60_000 {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("({i}, 'note number {i}')"));
            i += 1;
        }
        let started = std::time::Instant::now();
        let checked = probe(d, &sql).unwrap_or_else(|e| panic!("{d:?}: {e}"));
        let took = started.elapsed();
        eprintln!("{d:?}: {} bytes checked in {took:?}", sql.len());
        assert_eq!(checked.kind, StatementKind::Write);
        assert!(took < std::time::Duration::from_secs(2), "{d:?}: {took:?}");
    }
}

#[test]
fn functions_off_the_allow_list_are_refused() {
    let everywhere = [
        "SELECT sleep(1)",
        "SELECT pg_sleep(1)",
        "SELECT benchmark(1000000, md5('x'))",
        "SELECT load_extension('x')",
        "SELECT current_setting('data_directory')",
        "SELECT version()",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT query_to_xml('select 1', true, true, '')",
        "SELECT ts_stat('SELECT plugin FROM plinth_plugins')",
        "SELECT ts_rewrite('a', 'SELECT plugin FROM plinth_plugins')",
        "SELECT set_config('search_path', 'x', false)",
        "SELECT body FROM probe_notes WHERE id = my_function(1)",
    ];
    for d in ALL {
        for sql in everywhere {
            assert!(
                matches!(probe(d, sql), Err(ScopeError::ForbiddenFunction { .. })),
                "{d:?}: {sql}: {:?}",
                probe(d, sql)
            );
        }
    }
    for (d, sql) in [
        (Dialect::Sqlite, "SELECT printf('%.*c', 500000000, 'x')"),
        (Dialect::Sqlite, "SELECT zeroblob(1000000000)"),
        (Dialect::Sqlite, "SELECT readfile('/etc/passwd')"),
        (Dialect::Sqlite, "SELECT sqlite_version()"),
        (Dialect::Mysql, "SELECT get_lock('x', 10)"),
        (Dialect::Mysql, "SELECT user()"),
        (Dialect::Mysql, "SELECT database()"),
        (Dialect::Mysql, "SELECT LOAD_FILE('/etc/hostname')"),
        (Dialect::Postgres, "SELECT lo_import('/etc/passwd')"),
        (Dialect::Postgres, "SELECT dblink('x', 'y')"),
        (Dialect::Postgres, "SELECT lastval()"),
    ] {
        assert!(
            matches!(probe(d, sql), Err(ScopeError::ForbiddenFunction { .. })),
            "{d:?}: {sql}: {:?}",
            probe(d, sql)
        );
    }
    let e = probe(Dialect::Postgres, "SELECT ts_stat('x')").unwrap_err();
    assert_eq!(
        e.to_string(),
        "the function ts_stat() is not allowed for plugins"
    );
}

#[test]
fn ordinary_functions_are_allowed() {
    let everywhere = [
        "SELECT count(*), sum(id), max(id), min(id), avg(id) FROM probe_notes",
        "SELECT coalesce(body, 'x'), nullif(body, ''), lower(body), upper(body), length(body) FROM probe_notes",
        "SELECT abs(id), round(id), floor(id), ceil(id) FROM probe_notes",
        "SELECT row_number() OVER (ORDER BY id), rank() OVER (ORDER BY id) FROM probe_notes",
        "SELECT CAST(id AS CHAR(10)), CURRENT_TIMESTAMP FROM probe_notes",
        "SELECT trim(body), replace(body, 'a', 'b'), substr(body, 1, 2) FROM probe_notes",
    ];
    for d in ALL {
        for sql in everywhere {
            probe(d, sql).unwrap_or_else(|e| panic!("{d:?}: {sql}: {e}"));
        }
    }
    for (d, sql) in [
        (
            Dialect::Sqlite,
            "SELECT datetime('now'), strftime('%s', 'now'), julianday('now')",
        ),
        (
            Dialect::Sqlite,
            "SELECT json_extract(body, '$.a'), json_array(1, 2), json_object('a', 1) FROM probe_notes",
        ),
        (
            Dialect::Sqlite,
            "SELECT group_concat(body), ifnull(body, ''), iif(id > 1, 1, 0) FROM probe_notes",
        ),
        (
            Dialect::Postgres,
            "SELECT now(), date_trunc('day', now()), to_char(now(), 'YYYY')",
        ),
        (
            Dialect::Postgres,
            "SELECT jsonb_build_object('a', 1), jsonb_exists(body::jsonb, 'a'), string_agg(body, ',') FROM probe_notes",
        ),
        (
            Dialect::Postgres,
            "SELECT nextval('probe_notes_id_seq'), currval('probe_notes_id_seq')",
        ),
        (
            Dialect::Postgres,
            "SELECT setval('probe_notes_id_seq', 10, false)",
        ),
        (
            Dialect::Mysql,
            "SELECT NOW(), DATE_FORMAT(NOW(), '%Y'), UNIX_TIMESTAMP()",
        ),
        (
            Dialect::Mysql,
            "SELECT JSON_EXTRACT(body, '$.a'), JSON_OBJECT('a', 1), IFNULL(body, ''), IF(id > 1, 1, 0) FROM probe_notes",
        ),
        (
            Dialect::Mysql,
            "SELECT GROUP_CONCAT(body), LAST_INSERT_ID() FROM probe_notes",
        ),
    ] {
        probe(d, sql).unwrap_or_else(|e| panic!("{d:?}: {sql}: {e}"));
    }
}

#[test]
fn sequence_functions_need_a_literal_own_sequence() {
    for sql in [
        "SELECT nextval('goods_items_id_seq')",
        "SELECT setval('goods_items_id_seq', 1)",
        "SELECT currval('plinth_plugins_id_seq')",
    ] {
        assert!(
            matches!(
                probe(Dialect::Postgres, sql),
                Err(ScopeError::OutsideScope { .. })
            ),
            "{sql}: {:?}",
            probe(Dialect::Postgres, sql)
        );
    }
    for sql in [
        "SELECT nextval(?)",
        "SELECT nextval('probe_' || 'x')",
        "SELECT nextval('probe_x'::regclass)",
        "SELECT nextval('public.probe_x')",
        "SELECT nextval('\"Probe_x\"')",
        "SELECT nextval()",
        "SELECT 'plinth_plugins'::regclass",
    ] {
        assert!(
            matches!(
                probe(Dialect::Postgres, sql),
                Err(ScopeError::Forbidden { .. })
            ),
            "{sql}: {:?}",
            probe(Dialect::Postgres, sql)
        );
    }
}

#[test]
fn mysql_file_access_is_refused_outright() {
    for sql in [
        "SELECT body INTO OUTFILE '/tmp/x' FROM probe_notes",
        "SELECT body FROM probe_notes INTO OUTFILE '/tmp/x'",
        "SELECT body FROM probe_notes INTO DUMPFILE '/tmp/x'",
        "SELECT LOAD_FILE('/etc/hostname')",
        "SELECT load_file('/etc/hostname') FROM probe_notes",
        "LOAD DATA INFILE '/etc/passwd' INTO TABLE probe_notes",
        "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE probe_notes",
    ] {
        for allow in [Allow::Dml, Allow::DmlAndDdl] {
            let result = check_statement(Dialect::Mysql, PROBE, sql, allow);
            assert!(
                matches!(
                    result,
                    Err(ScopeError::Forbidden { .. } | ScopeError::ForbiddenFunction { .. })
                ),
                "{sql}: {result:?}"
            );
        }
    }
}

#[test]
fn refusals_name_the_table_and_whose_it_is() {
    for d in ALL {
        let e = probe(d, "SELECT * FROM plinth_plugins").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("plinth_plugins")
                && msg.contains("probe_")
                && msg.contains("belongs to the host"),
            "{msg}"
        );
        let e = probe(d, "UPDATE goods_items SET name = 'x'").unwrap_err();
        let msg = e.to_string();
        assert_eq!(
            msg,
            "the statement writes \"goods_items\", which is not one of this plugin's tables (another plugin's, or nobody's); this plugin's tables start with its prefix \"probe_\""
        );
        let e = probe(d, "SELECT * FROM sqlite_master").unwrap_err();
        assert!(e.to_string().contains("catalog"), "{e}");
        let e = probe(d, "SELEC 1").unwrap_err();
        assert!(e.to_string().contains("not supported for plugins"), "{e}");
    }
}

/// Every statement the example plugins run, with their parameters' `?`.
fn example_statements() -> Vec<String> {
    let columns = "id, sku, name, price_cents, stock, created_at";
    let columns_1_1 = "id, sku, name, price_cents, stock, created_at, category";
    let mut out = Vec::new();
    for cols in [columns, columns_1_1] {
        for filter in [
            "WHERE id = ?",
            "ORDER BY id",
            "WHERE LOWER(sku) LIKE ? OR LOWER(name) LIKE ? ORDER BY id",
            "WHERE sku = ?",
            "WHERE stock < ? ORDER BY sku",
        ] {
            out.push(format!("SELECT {cols} FROM goods_items {filter}"));
        }
    }
    out.extend([
        "INSERT INTO goods_items (sku, name, price_cents, stock, created_at) VALUES (?, ?, ?, ?, ?)".to_string(),
        "INSERT INTO goods_items (sku, name, price_cents, stock, created_at, category) VALUES (?, ?, ?, ?, ?, ?)".to_string(),
        "UPDATE goods_items SET category = ? WHERE category IS NULL".to_string(),
        "UPDATE goods_items SET name = ?, price_cents = ?, stock = ?, category = ? WHERE id = ?".to_string(),
        "UPDATE goods_items SET name = ? WHERE id = ?".to_string(),
        "DELETE FROM goods_items WHERE id = ?".to_string(),
        "UPDATE goods_items SET stock = stock + ? WHERE id = ? AND stock + ? >= 0".to_string(),
    ]);
    out
}

fn example_migrations(d: Dialect) -> Vec<(&'static str, &'static str)> {
    macro_rules! files {
        ($dir:literal) => {
            [
                (
                    "goods 0001",
                    include_str!(concat!(
                        "../../../../plugins/goods/sql/",
                        $dir,
                        "/0001_create_items.sql"
                    )),
                ),
                (
                    "goods 0002",
                    include_str!(concat!(
                        "../../../../plugins/goods/sql-1.1/",
                        $dir,
                        "/0002_add_category.sql"
                    )),
                ),
                (
                    "probe 0001",
                    include_str!(concat!(
                        "../../../../plugins/probe/sql/",
                        $dir,
                        "/0001_create_notes.sql"
                    )),
                ),
            ]
        };
    }
    match d {
        Dialect::Sqlite => files!("sqlite").to_vec(),
        Dialect::Postgres => files!("postgres").to_vec(),
        Dialect::Mysql => files!("mysql").to_vec(),
    }
}

#[test]
fn example_plugin_statements_round_trip() {
    for d in ALL {
        for sql in example_statements() {
            let checked = check_statement(d, "goods_", &sql, Allow::Dml)
                .unwrap_or_else(|e| panic!("{d:?}: {sql}: {e}"));
            assert_eq!(checked.placeholders, sql.matches('?').count(), "{sql}");
            // The rendered text re-parses to the same tree as the text the
            // plugin wrote (after the placeholder rewrite).
            let tokens = lexical::tokenize(d, &sql).unwrap();
            let (rewritten, _) = lexical::rewrite_placeholders(d, &sql, &tokens).unwrap();
            assert_eq!(
                parse_one(d, &checked.sql).unwrap(),
                parse_one(d, &rewritten).unwrap(),
                "{d:?}: {sql}"
            );
            if d == Dialect::Postgres {
                assert!(!checked.sql.contains('?'), "{}", checked.sql);
            }
        }
        for (what, script) in example_migrations(d) {
            let prefix = if what.starts_with("probe") {
                "probe_"
            } else {
                "goods_"
            };
            let checked =
                check_script(d, prefix, script).unwrap_or_else(|e| panic!("{d:?}: {what}: {e}"));
            for c in &checked {
                assert_eq!(c.kind, StatementKind::Ddl, "{what}");
                assert!(!c.sql.contains("--"), "{}", c.sql);
                assert_eq!(parse_one(d, &c.sql).unwrap().to_string(), c.sql);
            }
        }
    }
    // The same statements stay as readable as they were written.
    let c = check_statement(
        Dialect::Postgres,
        "goods_",
        "UPDATE goods_items SET stock = stock + ? WHERE id = ? AND stock + ? >= 0",
        Allow::Dml,
    )
    .unwrap();
    assert_eq!(
        c.sql,
        "UPDATE goods_items SET stock = stock + $1 WHERE id = $2 AND stock + $3 >= 0"
    );
}

#[test]
fn question_marks_inside_literals_are_not_placeholders() {
    let c = probe(
        Dialect::Postgres,
        "SELECT '?', ? FROM probe_notes WHERE body = 'a?b' AND \"body\" <> ?",
    )
    .unwrap();
    assert_eq!(
        c.sql,
        "SELECT '?', $1 FROM probe_notes WHERE body = 'a?b' AND \"body\" <> $2"
    );
    assert_eq!(c.placeholders, 2);
    for d in [Dialect::Sqlite, Dialect::Mysql] {
        let c = probe(d, "SELECT '?', ? FROM probe_notes WHERE body = 'a?b'").unwrap();
        assert_eq!(c.sql, "SELECT '?', ? FROM probe_notes WHERE body = 'a?b'");
        assert_eq!(c.placeholders, 1);
    }
}

#[test]
fn literals_render_as_written() {
    // Backslashes and doubled quotes survive rendering unchanged, so the
    // server reads the same literal the guard checked.
    for (d, sql) in [
        (
            Dialect::Mysql,
            "SELECT 'a\\'b', '\\\\', 'it''s' FROM probe_notes",
        ),
        (Dialect::Sqlite, "SELECT 'a\\', 'it''s' FROM probe_notes"),
        (Dialect::Postgres, "SELECT 'a\\', 'it''s' FROM probe_notes"),
    ] {
        let c = probe(d, sql).unwrap_or_else(|e| panic!("{d:?}: {sql}: {e}"));
        assert_eq!(c.sql, sql, "{d:?}");
    }
    // A MySQL literal whose rendering would change its meaning is caught by
    // the read-back check, not sent.
    let smuggle = "SELECT '\\\\', ' UNION SELECT plugin FROM plinth_plugins WHERE ''=''";
    if let Ok(c) = probe(Dialect::Mysql, smuggle) {
        assert_eq!(c.sql, smuggle);
    }
}

#[test]
fn writes_through_joins_and_aliases_are_checked() {
    for (d, sql) in [
        (
            Dialect::Mysql,
            "UPDATE probe_notes JOIN goods_items ON true SET goods_items.name = 'x'",
        ),
        (
            Dialect::Mysql,
            "DELETE g FROM probe_notes p JOIN goods_items g ON p.id = g.id",
        ),
        (
            Dialect::Mysql,
            "DELETE FROM probe_notes, goods_items USING probe_notes JOIN goods_items",
        ),
        (Dialect::Postgres, "TRUNCATE goods_items"),
    ] {
        let result = probe_ddl(d, sql);
        assert!(
            matches!(
                result,
                Err(ScopeError::OutsideScope {
                    access: Access::Writes,
                    ..
                })
            ),
            "{d:?}: {sql}: {result:?}"
        );
    }
}
