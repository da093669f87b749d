-- One row per (event, subscriber): where that delivery stands. state is
-- 'pending', 'delivered' or 'dead'; a relay claims a row by writing its
-- host id and a lease (database time, ms) and may only finish a row it
-- still holds, so between several hosts each delivery happens once.
CREATE TABLE plinth_event_deliveries (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id BIGINT NOT NULL,
    subscriber VARCHAR(64) NOT NULL,
    topic VARCHAR(128) NOT NULL,
    state VARCHAR(16) NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    claimed_by VARCHAR(64),
    lease_until BIGINT,
    delivered_at BIGINT,
    UNIQUE KEY plinth_event_deliveries_once (event_id, subscriber),
    INDEX plinth_event_deliveries_due (subscriber, state, event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
