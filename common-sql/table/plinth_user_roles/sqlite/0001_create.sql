-- Which roles each user holds (by user id and role name).
CREATE TABLE plinth_user_roles (
    user_id BIGINT NOT NULL,
    role VARCHAR(64) NOT NULL,
    PRIMARY KEY (user_id, role)
);
