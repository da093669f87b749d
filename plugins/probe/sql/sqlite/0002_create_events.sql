-- Every event delivered to the probe, written in the delivery's
-- transaction, so tests can count deliveries exactly.
CREATE TABLE {{prefix}}events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic VARCHAR(128) NOT NULL,
    payload VARCHAR(4000) NOT NULL
);
