-- Which permission codes each role holds. `plugin` is the plugin that
-- declared the code (empty for the host's own codes such as
-- `plugins.install`), so a plugin's upgrade or removal can drop exactly
-- the grants of the codes it no longer declares.
CREATE TABLE plinth_role_grants (
    role VARCHAR(64) NOT NULL,
    permission VARCHAR(128) NOT NULL,
    plugin VARCHAR(64) NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (role, permission)
);
