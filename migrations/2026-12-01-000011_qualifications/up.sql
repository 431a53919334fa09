-- Personnel are trained for what they do (21 CFR 211.25, 11.10(i)). A test
-- definition may require a qualification; QA grants it per test code, valid
-- until a date, with a signature, never to themselves, and may revoke it.
-- A test definition may also name the kind of instrument it is measured on.

ALTER TABLE spec_tests
    ADD COLUMN qualification_required boolean NOT NULL DEFAULT false,
    ADD COLUMN instrument_kind text
        CHECK (instrument_kind IS NULL OR instrument_kind ~ '^[a-z][a-z0-9_]{0,39}$');

CREATE TABLE qualifications (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id),
    test_code     text        NOT NULL CHECK (length(btrim(test_code)) > 0),
    valid_from    timestamptz NOT NULL,
    valid_until   timestamptz NOT NULL,
    granted_by    uuid        NOT NULL REFERENCES users (id),
    granted_at    timestamptz NOT NULL,
    reason        text,
    revoked_at    timestamptz,
    revoked_by    uuid        REFERENCES users (id),
    revoke_reason text,
    CHECK (granted_by <> user_id),
    CHECK (valid_until > valid_from),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL)),
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);
-- The check at every result: this person, this test, valid then.
CREATE INDEX qualifications_holder ON qualifications (user_id, test_code, valid_until);
-- QA's list of what expires soon.
CREATE INDEX qualifications_expiry ON qualifications (valid_until) WHERE revoked_at IS NULL;
CREATE TRIGGER qualifications_no_delete BEFORE DELETE OR TRUNCATE ON qualifications
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();
-- A grant is never edited; it is revoked, once.
CREATE FUNCTION cellqc_qualification_revoke_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL
       OR (NEW.id, NEW.user_id, NEW.test_code, NEW.valid_from, NEW.valid_until, NEW.granted_by,
           NEW.granted_at, NEW.reason)
          IS DISTINCT FROM
          (OLD.id, OLD.user_id, OLD.test_code, OLD.valid_from, OLD.valid_until, OLD.granted_by,
           OLD.granted_at, OLD.reason) THEN
        RAISE EXCEPTION 'cellqc: a qualification is only ever revoked, once'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER qualifications_revoke_once BEFORE UPDATE ON qualifications
    FOR EACH ROW EXECUTE FUNCTION cellqc_qualification_revoke_once();

ALTER TABLE signatures DROP CONSTRAINT signatures_meaning_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_meaning_check CHECK (meaning IN (
    'reviewed', 'review_rejected', 'spec_approved', 'released', 'conditionally_released',
    'rejected', 'recalled', 'deviation_closed', 'qualification_granted', 'qualification_revoked'));
ALTER TABLE signatures DROP CONSTRAINT signatures_entity_type_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_entity_type_check CHECK (entity_type IN (
    'result', 'specification', 'batch', 'deviation', 'qualification'));

GRANT SELECT, INSERT, UPDATE ON qualifications TO cellqc_app;
