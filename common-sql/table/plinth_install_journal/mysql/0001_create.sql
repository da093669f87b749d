-- Append-only journal of plugin operations (install, upgrade, rollback,
-- enable, disable, remove): one row per step reached, so a host that was
-- killed mid-operation can tell on restart how far it got.
CREATE TABLE plinth_install_journal (
    op_id VARCHAR(64) NOT NULL,
    seq INTEGER NOT NULL,
    plugin VARCHAR(64) NOT NULL,
    operation VARCHAR(16) NOT NULL,
    from_version VARCHAR(64),
    to_version VARCHAR(64),
    step VARCHAR(32) NOT NULL,
    message VARCHAR(2000),
    at BIGINT NOT NULL,
    PRIMARY KEY (op_id, seq),
    INDEX plinth_install_journal_by_plugin (plugin, at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
