-- Guessing at sign-in does not lock anyone out (API v1.2): failures are
-- counted per account, as typed (known or not), and client address; past
-- the threshold that address is held off that account for a while. State,
-- not record: each failure and each hold has its own audit entry.
CREATE TABLE sign_in_throttle (
    username        text        NOT NULL CHECK (length(username) <= 200),
    address         text        NOT NULL CHECK (length(address) <= 64),
    failures        integer     NOT NULL CHECK (failures >= 0),
    last_failure_at timestamptz NOT NULL,
    blocked_until   timestamptz,
    PRIMARY KEY (username, address)
);
GRANT SELECT, INSERT, UPDATE ON sign_in_throttle TO cellqc_app;
