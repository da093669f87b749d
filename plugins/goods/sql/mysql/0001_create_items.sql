-- Products and their stock. Money is integer cents and time integer
-- milliseconds since the epoch: portable through the host's sqlx Any driver.
-- VARCHAR, not TEXT: MySQL TEXT columns reach sqlx Any as blobs, and a
-- UNIQUE index needs a bounded length.
CREATE TABLE {{prefix}}items (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    sku VARCHAR(255) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    price_cents BIGINT NOT NULL DEFAULT 0,
    stock BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE INDEX {{prefix}}items_stock ON {{prefix}}items (stock);
