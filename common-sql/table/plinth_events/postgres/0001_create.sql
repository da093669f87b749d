-- The outbox: every published event, written in the publisher's own
-- transaction when it has one. `fanned_out` turns 'yes' once a relay has
-- created a delivery row for each subscriber.
CREATE TABLE plinth_events (
    id BIGSERIAL PRIMARY KEY,
    topic VARCHAR(128) NOT NULL,
    source VARCHAR(128) NOT NULL,
    payload TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    fanned_out VARCHAR(3) NOT NULL DEFAULT 'no'
);
CREATE INDEX plinth_events_to_fan_out ON plinth_events (fanned_out, id);
