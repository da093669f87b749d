-- One table, so the SQL scope tests have something of the probe's own.
CREATE TABLE {{prefix}}notes (
    id INTEGER PRIMARY KEY,
    body TEXT
);
