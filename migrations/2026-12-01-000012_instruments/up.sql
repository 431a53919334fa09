-- Instruments are calibrated and fit for use (21 CFR 211.68, 211.160(b)(4)).
-- An instrument and its history are facts: calibrations (passed or failed,
-- valid until a date), taken out of service, returned to service. Its status
-- at any moment is derived from them (domain::instrument::status_at), so a
-- result is judged by the instrument's state when it was performed.

CREATE TABLE instruments (
    id         uuid        PRIMARY KEY,
    code       text        NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$'),
    name       text        NOT NULL CHECK (length(btrim(name)) > 0),
    kind       text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,39}$'),
    location   text,
    created_at timestamptz NOT NULL,
    created_by uuid        NOT NULL REFERENCES users (id)
);
CREATE TRIGGER instruments_append_only BEFORE UPDATE OR DELETE ON instruments
    FOR EACH ROW EXECUTE FUNCTION cellqc_refuse_change();
CREATE TRIGGER instruments_no_truncate BEFORE TRUNCATE ON instruments
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();

CREATE TABLE instrument_events (
    id            uuid        PRIMARY KEY,
    instrument_id uuid        NOT NULL REFERENCES instruments (id),
    kind          text        NOT NULL CHECK (kind IN ('calibration', 'out_of_service', 'returned')),
    at            timestamptz NOT NULL,
    outcome       text        CHECK (outcome IN ('pass', 'fail')),
    valid_until   timestamptz,
    certificate   text,
    notes         text,
    reason        text,
    recorded_by   uuid        NOT NULL REFERENCES users (id),
    recorded_at   timestamptz NOT NULL,
    CHECK ((kind = 'calibration') = (outcome IS NOT NULL AND valid_until IS NOT NULL)),
    CHECK (kind = 'calibration' OR length(btrim(reason)) > 0),
    CHECK (valid_until IS NULL OR valid_until > at)
);
CREATE INDEX instrument_events_history ON instrument_events (instrument_id, at, id);
CREATE TRIGGER instrument_events_append_only BEFORE UPDATE OR DELETE ON instrument_events
    FOR EACH ROW EXECUTE FUNCTION cellqc_refuse_change();
CREATE TRIGGER instrument_events_no_truncate BEFORE TRUNCATE ON instrument_events
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();

-- A result names the instrument it was measured on.
ALTER TABLE results ADD COLUMN instrument_id uuid REFERENCES instruments (id);
-- The impact search: every result on an instrument in a time window.
CREATE INDEX results_instrument ON results (instrument_id, performed_at)
    WHERE instrument_id IS NOT NULL;

ALTER TABLE signatures DROP CONSTRAINT signatures_meaning_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_meaning_check CHECK (meaning IN (
    'reviewed', 'review_rejected', 'spec_approved', 'released', 'conditionally_released',
    'rejected', 'recalled', 'deviation_closed', 'qualification_granted', 'qualification_revoked',
    'instrument_returned'));
ALTER TABLE signatures DROP CONSTRAINT signatures_entity_type_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_entity_type_check CHECK (entity_type IN (
    'result', 'specification', 'batch', 'deviation', 'qualification', 'instrument'));

GRANT SELECT, INSERT ON instruments, instrument_events TO cellqc_app;
