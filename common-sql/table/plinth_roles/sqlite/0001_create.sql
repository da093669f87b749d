-- Roles users are given. `builtin` is 'Y' for the super-admin role, which
-- bypasses every check and cannot be deleted. `data_scope` (all,
-- department, self, custom) travels to plugins with the user; enforcing it
-- is the plugin's job.
CREATE TABLE plinth_roles (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    title VARCHAR(200) NOT NULL,
    data_scope VARCHAR(16) NOT NULL,
    builtin VARCHAR(1) NOT NULL,
    created_at BIGINT NOT NULL
);
