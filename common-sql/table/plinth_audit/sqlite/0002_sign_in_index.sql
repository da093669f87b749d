-- The users listing reads each login's newest successful sign-in
-- (action = 'auth.sign_in' AND outcome = 'ok', newest `at` per actor):
-- this index answers it without reading the log's rows.
CREATE INDEX plinth_audit_sign_ins ON plinth_audit (action, outcome, actor, at);
