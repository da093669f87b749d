-- One row per event received. VARCHAR, not TEXT: MySQL TEXT columns
-- reach sqlx Any as blobs.
CREATE TABLE {{prefix}}notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic VARCHAR(128) NOT NULL,
    payload VARCHAR(4000) NOT NULL
);
