-- Products and their stock. Money is integer cents and time integer
-- milliseconds since the epoch: portable through the host's sqlx Any driver.
CREATE TABLE {{prefix}}items (
    id BIGSERIAL PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    price_cents BIGINT NOT NULL DEFAULT 0,
    stock BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE INDEX {{prefix}}items_stock ON {{prefix}}items (stock);
