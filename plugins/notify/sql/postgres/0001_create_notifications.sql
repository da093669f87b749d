-- One row per event received. VARCHAR, not TEXT: MySQL TEXT columns
-- reach sqlx Any as blobs.
CREATE TABLE {{prefix}}notifications (
    id BIGSERIAL PRIMARY KEY,
    topic VARCHAR(128) NOT NULL,
    payload VARCHAR(4000) NOT NULL
);
