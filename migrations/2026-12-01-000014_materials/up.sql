-- Reagents and materials are released, in date and traceable (21 CFR 211.84,
-- 211.194(a); EU GMP Ch. 5). A lot is quarantined until QA releases it
-- (signed) and may be rejected (signed); a result or a batch names the lots
-- it used, and "where used" answers from an index.

CREATE TABLE material_lots (
    id            uuid        PRIMARY KEY,
    code          text        NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$'),
    name          text        NOT NULL CHECK (length(btrim(name)) > 0),
    lot_number    text        NOT NULL CHECK (length(btrim(lot_number)) > 0),
    supplier      text,
    kind          text        NOT NULL CHECK (kind IN ('reagent', 'consumable', 'raw_material')),
    expires_at    timestamptz NOT NULL,
    status        text        NOT NULL DEFAULT 'quarantine'
                              CHECK (status IN ('quarantine', 'released', 'rejected')),
    created_at    timestamptz NOT NULL,
    created_by    uuid        NOT NULL REFERENCES users (id),
    released_at   timestamptz,
    released_by   uuid        REFERENCES users (id),
    rejected_at   timestamptz,
    rejected_by   uuid        REFERENCES users (id),
    reject_reason text,
    UNIQUE (code, lot_number),
    CHECK ((released_at IS NULL) = (released_by IS NULL)),
    CHECK ((rejected_at IS NULL) = (rejected_by IS NULL)),
    CHECK ((rejected_at IS NULL) = (reject_reason IS NULL)),
    CHECK ((status = 'released') = (released_at IS NOT NULL AND rejected_at IS NULL)),
    CHECK ((status = 'rejected') = (rejected_at IS NOT NULL))
);
CREATE TRIGGER material_lots_no_delete BEFORE DELETE OR TRUNCATE ON material_lots
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();
-- What a lot is never changes; its status moves quarantine -> released ->
-- rejected (or quarantine -> rejected), never back.
CREATE FUNCTION cellqc_material_lot_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.code, NEW.name, NEW.lot_number, NEW.supplier, NEW.kind, NEW.expires_at,
        NEW.created_at, NEW.created_by)
       IS DISTINCT FROM
       (OLD.id, OLD.code, OLD.name, OLD.lot_number, OLD.supplier, OLD.kind, OLD.expires_at,
        OLD.created_at, OLD.created_by)
       OR NOT ((OLD.status = 'quarantine' AND NEW.status IN ('released', 'rejected'))
               OR (OLD.status = 'released' AND NEW.status = 'rejected'))
       OR (OLD.released_at IS NOT NULL AND NEW.released_at IS DISTINCT FROM OLD.released_at) THEN
        RAISE EXCEPTION 'cellqc: a material lot only moves quarantine -> released -> rejected'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER material_lots_transition BEFORE UPDATE ON material_lots
    FOR EACH ROW EXECUTE FUNCTION cellqc_material_lot_transition();

CREATE TABLE material_uses (
    id          uuid        PRIMARY KEY,
    material_id uuid        NOT NULL REFERENCES material_lots (id),
    batch_id    uuid        NOT NULL REFERENCES batches (id),
    result_id   uuid        REFERENCES results (id),
    used_at     timestamptz NOT NULL,
    quantity    numeric     CHECK (quantity IS NULL OR quantity > 0),
    unit        text,
    recorded_by uuid        NOT NULL REFERENCES users (id),
    recorded_at timestamptz NOT NULL,
    UNIQUE (material_id, result_id)
);
-- Where used: every batch of a lot, by index.
CREATE INDEX material_uses_where ON material_uses (material_id, batch_id);
CREATE INDEX material_uses_batch ON material_uses (batch_id);
CREATE TRIGGER material_uses_append_only BEFORE UPDATE OR DELETE ON material_uses
    FOR EACH ROW EXECUTE FUNCTION cellqc_refuse_change();
CREATE TRIGGER material_uses_no_truncate BEFORE TRUNCATE ON material_uses
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();

ALTER TABLE signatures DROP CONSTRAINT signatures_meaning_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_meaning_check CHECK (meaning IN (
    'reviewed', 'review_rejected', 'spec_approved', 'released', 'conditionally_released',
    'rejected', 'recalled', 'deviation_closed', 'qualification_granted', 'qualification_revoked',
    'instrument_returned', 'material_released', 'material_rejected'));
ALTER TABLE signatures DROP CONSTRAINT signatures_entity_type_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_entity_type_check CHECK (entity_type IN (
    'result', 'specification', 'batch', 'deviation', 'qualification', 'instrument', 'material'));

GRANT SELECT, INSERT, UPDATE ON material_lots TO cellqc_app;
GRANT SELECT, INSERT ON material_uses TO cellqc_app;
