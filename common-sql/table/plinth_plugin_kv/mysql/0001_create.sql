-- Each plugin's private key-value store (the WIT `kv` interface).
CREATE TABLE plinth_plugin_kv (
    plugin VARCHAR(64) NOT NULL,
    k VARCHAR(255) NOT NULL,
    v MEDIUMBLOB NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (plugin, k)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
