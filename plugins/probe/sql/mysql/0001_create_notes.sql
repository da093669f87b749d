-- One table, so the SQL scope tests have something of the probe's own.
-- VARCHAR, not TEXT: MySQL TEXT columns reach sqlx Any as blobs.
CREATE TABLE {{prefix}}notes (
    id INTEGER PRIMARY KEY,
    body VARCHAR(4000)
);
