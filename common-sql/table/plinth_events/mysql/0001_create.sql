-- The outbox: every published event, written in the publisher's own
-- transaction when it has one. `fanned_out` turns 'yes' once a relay has
-- created a delivery row for each subscriber.
CREATE TABLE plinth_events (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    topic VARCHAR(128) NOT NULL,
    source VARCHAR(128) NOT NULL,
    payload MEDIUMTEXT NOT NULL,
    published_at BIGINT NOT NULL,
    fanned_out VARCHAR(3) NOT NULL DEFAULT 'no',
    INDEX plinth_events_to_fan_out (fanned_out, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
