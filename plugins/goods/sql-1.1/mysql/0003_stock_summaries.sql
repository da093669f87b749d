-- goods 1.1.0: one row per run of the nightly stock-summary task.
CREATE TABLE {{prefix}}stock_summaries (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    taken_at BIGINT NOT NULL,
    items BIGINT NOT NULL,
    units BIGINT NOT NULL,
    value_cents BIGINT NOT NULL,
    low_items BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
