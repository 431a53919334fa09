-- The QC lab workflow: products, specifications, batches, results, reviews
-- (signatures), deviations, and idempotency keys for retried requests.

CREATE TABLE products (
    id                          uuid        PRIMARY KEY,
    code                        text        NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9._-]{1,40}$'),
    name                        text        NOT NULL CHECK (length(btrim(name)) > 0),
    product_type                text        NOT NULL CHECK (length(btrim(product_type)) > 0),
    storage_min_c               text,
    storage_max_c               text,
    release_signatures_required smallint    NOT NULL DEFAULT 1 CHECK (release_signatures_required IN (1, 2)),
    created_by                  uuid        NOT NULL REFERENCES users (id),
    created_at                  timestamptz NOT NULL,
    CHECK (storage_min_c IS NULL OR storage_max_c IS NULL
           OR storage_min_c::numeric <= storage_max_c::numeric)
);
CREATE TRIGGER products_append_only BEFORE UPDATE OR DELETE ON products
    FOR EACH ROW EXECUTE FUNCTION cellqc_refuse_change();
CREATE TRIGGER products_no_truncate BEFORE TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();

CREATE TABLE specifications (
    id           uuid        PRIMARY KEY,
    product_id   uuid        NOT NULL REFERENCES products (id),
    version      text        NOT NULL CHECK (length(btrim(version)) > 0),
    status       text        NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'effective', 'superseded')),
    author_id    uuid        NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL,
    approved_at  timestamptz,
    superseded_at timestamptz,
    UNIQUE (product_id, version),
    CHECK ((status = 'draft') = (approved_at IS NULL)),
    CHECK ((status = 'superseded') = (superseded_at IS NOT NULL))
);
-- At most one effective version per product.
CREATE UNIQUE INDEX specifications_one_effective ON specifications (product_id) WHERE status = 'effective';

-- A specification's content never changes; only draft -> effective -> superseded.
CREATE FUNCTION cellqc_spec_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.product_id <> OLD.product_id OR NEW.version <> OLD.version
       OR NEW.author_id <> OLD.author_id OR NEW.created_at <> OLD.created_at
       OR (OLD.approved_at IS NOT NULL AND NEW.approved_at IS DISTINCT FROM OLD.approved_at)
       OR NOT ((OLD.status = 'draft' AND NEW.status = 'effective')
               OR (OLD.status = 'effective' AND NEW.status = 'superseded')) THEN
        RAISE EXCEPTION 'cellqc: a specification only moves draft -> effective -> superseded'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER specifications_transition BEFORE UPDATE ON specifications
    FOR EACH ROW EXECUTE FUNCTION cellqc_spec_transition();
CREATE TRIGGER specifications_no_delete BEFORE DELETE OR TRUNCATE ON specifications
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();

CREATE TABLE spec_tests (
    spec_id                 uuid     NOT NULL REFERENCES specifications (id),
    position                integer  NOT NULL,
    code                    text     NOT NULL,
    name                    text     NOT NULL,
    method                  text     NOT NULL,
    kind                    text     NOT NULL CHECK (kind IN ('numeric', 'qualitative')),
    unit                    text,
    -- limits as entered, and their exact value for the database's own checks
    min_text                text,
    max_text                text,
    min_value               numeric,
    max_value               numeric,
    min_inclusive           boolean  NOT NULL,
    max_inclusive           boolean  NOT NULL,
    decimals                smallint CHECK (decimals BETWEEN 0 AND 12),
    options                 text[],
    allowed                 text[]   NOT NULL,
    required                boolean  NOT NULL,
    pending_release_allowed boolean  NOT NULL,
    PRIMARY KEY (spec_id, code),
    UNIQUE (spec_id, position),
    CHECK (min_value IS NULL OR max_value IS NULL OR min_value <= max_value),
    CHECK (kind = 'qualitative' OR min_value IS NOT NULL OR max_value IS NOT NULL),
    CHECK (kind = 'numeric' OR cardinality(allowed) >= 1)
);
CREATE TRIGGER spec_tests_append_only BEFORE UPDATE OR DELETE ON spec_tests
    FOR EACH ROW EXECUTE FUNCTION cellqc_refuse_change();
CREATE TRIGGER spec_tests_no_truncate BEFORE TRUNCATE ON spec_tests
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();

CREATE TABLE batches (
    id                 uuid        PRIMARY KEY,
    batch_number       text        NOT NULL UNIQUE CHECK (length(btrim(batch_number)) > 0),
    product_id         uuid        NOT NULL REFERENCES products (id),
    spec_id            uuid        NOT NULL REFERENCES specifications (id),
    manufactured_at    timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    donor_din          text        CHECK (donor_din ~ '^[A-NP-Z1-9][0-9]{12}[0-9A-Z*]$'),
    intended_recipient text,
    quantity           text,
    unit               text,
    status             text        NOT NULL DEFAULT 'quarantine'
        CHECK (status IN ('quarantine', 'conditionally_released', 'released', 'rejected', 'recalled')),
    created_by         uuid        NOT NULL REFERENCES users (id),
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CHECK (expires_at > manufactured_at)
);
CREATE INDEX batches_product ON batches (product_id, id);
CREATE INDEX batches_status ON batches (status, id);
CREATE INDEX batches_donor_din ON batches (donor_din) WHERE donor_din IS NOT NULL;
CREATE TRIGGER batches_no_delete BEFORE DELETE OR TRUNCATE ON batches
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();
-- What a batch is never changes; only its status moves.
CREATE FUNCTION cellqc_batch_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.batch_number, NEW.product_id, NEW.spec_id, NEW.manufactured_at, NEW.expires_at,
        NEW.created_by, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.batch_number, OLD.product_id, OLD.spec_id, OLD.manufactured_at, OLD.expires_at,
        OLD.created_by, OLD.created_at)
       OR NEW.donor_din IS DISTINCT FROM OLD.donor_din
       OR NEW.intended_recipient IS DISTINCT FROM OLD.intended_recipient
       OR NEW.quantity IS DISTINCT FROM OLD.quantity OR NEW.unit IS DISTINCT FROM OLD.unit THEN
        RAISE EXCEPTION 'cellqc: a batch record is never edited; only its status changes'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER batches_immutable BEFORE UPDATE ON batches
    FOR EACH ROW EXECUTE FUNCTION cellqc_batch_immutable();

CREATE TABLE batch_parents (
    batch_id  uuid NOT NULL REFERENCES batches (id),
    parent_id uuid NOT NULL REFERENCES batches (id),
    PRIMARY KEY (batch_id, parent_id),
    CHECK (batch_id <> parent_id)
);
CREATE INDEX batch_parents_parent ON batch_parents (parent_id);
CREATE TRIGGER batch_parents_append_only BEFORE UPDATE OR DELETE ON batch_parents
    FOR EACH ROW EXECUTE FUNCTION cellqc_refuse_change();
CREATE TRIGGER batch_parents_no_truncate BEFORE TRUNCATE ON batch_parents
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();

CREATE TABLE results (
    id                 uuid        PRIMARY KEY,
    batch_id           uuid        NOT NULL REFERENCES batches (id),
    test_code          text        NOT NULL,
    value_text         text        NOT NULL,
    value_numeric      numeric,
    unit               text,
    outcome            text        NOT NULL CHECK (outcome IN ('pass', 'fail')),
    performed_by       uuid        NOT NULL REFERENCES users (id),
    performed_at       timestamptz NOT NULL,
    recorded_at        timestamptz NOT NULL,
    instrument         text,
    comment            text,
    -- a result is replaced at most once: no two retests of the same result
    replaces_result_id uuid        UNIQUE REFERENCES results (id),
    reason             text,
    CHECK (replaces_result_id IS NULL OR length(btrim(reason)) > 0)
);
CREATE INDEX results_batch ON results (batch_id, test_code, id);
CREATE INDEX results_performer ON results (performed_by);
CREATE TRIGGER results_append_only BEFORE UPDATE OR DELETE ON results
    FOR EACH ROW EXECUTE FUNCTION cellqc_refuse_change();
CREATE TRIGGER results_no_truncate BEFORE TRUNCATE ON results
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();

CREATE TABLE signatures (
    id               uuid        PRIMARY KEY,
    signer_id        uuid        NOT NULL REFERENCES users (id),
    signer_username  text        NOT NULL,
    signer_full_name text        NOT NULL,
    meaning          text        NOT NULL CHECK (meaning IN ('reviewed', 'review_rejected', 'spec_approved',
        'released', 'conditionally_released', 'rejected', 'recalled', 'deviation_closed')),
    signed_at        timestamptz NOT NULL,
    reason           text,
    record_hash      text        NOT NULL CHECK (record_hash ~ '^[0-9a-f]{64}$'),
    entity_type      text        NOT NULL CHECK (entity_type IN ('result', 'specification', 'batch', 'deviation')),
    entity_id        uuid        NOT NULL,
    batch_id         uuid        REFERENCES batches (id)
);
CREATE INDEX signatures_entity ON signatures (entity_type, entity_id, id);
CREATE INDEX signatures_batch ON signatures (batch_id, id) WHERE batch_id IS NOT NULL;
-- One review per result.
CREATE UNIQUE INDEX signatures_one_review ON signatures (entity_id)
    WHERE meaning IN ('reviewed', 'review_rejected');
CREATE TRIGGER signatures_append_only BEFORE UPDATE OR DELETE ON signatures
    FOR EACH ROW EXECUTE FUNCTION cellqc_refuse_change();
CREATE TRIGGER signatures_no_truncate BEFORE TRUNCATE ON signatures
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();

CREATE TABLE deviations (
    id          uuid        PRIMARY KEY,
    batch_id    uuid        NOT NULL REFERENCES batches (id),
    result_id   uuid        UNIQUE REFERENCES results (id),
    kind        text        NOT NULL CHECK (kind IN ('oos', 'excursion', 'manual')),
    severity    text        NOT NULL CHECK (severity IN ('minor', 'major', 'critical')),
    status      text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    title       text        NOT NULL CHECK (length(btrim(title)) > 0),
    description text        NOT NULL,
    opened_by   uuid        REFERENCES users (id),
    opened_at   timestamptz NOT NULL,
    conclusion  text        CHECK (conclusion IN ('invalid_test', 'confirmed_oos', 'no_impact')),
    root_cause  text,
    closed_by   uuid        REFERENCES users (id),
    closed_at   timestamptz,
    CHECK ((kind = 'oos') = (result_id IS NOT NULL)),
    CHECK ((status = 'closed') = (conclusion IS NOT NULL AND length(btrim(root_cause)) > 0
                                  AND closed_by IS NOT NULL AND closed_at IS NOT NULL)),
    CHECK (conclusion IS DISTINCT FROM 'invalid_test' OR kind = 'oos')
);
CREATE INDEX deviations_batch ON deviations (batch_id, id);
CREATE INDEX deviations_open ON deviations (batch_id) WHERE status = 'open';
CREATE TRIGGER deviations_no_delete BEFORE DELETE OR TRUNCATE ON deviations
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();
-- A deviation is closed once; what was opened is never edited.
CREATE FUNCTION cellqc_deviation_close_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'open' OR NEW.status <> 'closed'
       OR (NEW.id, NEW.batch_id, NEW.result_id, NEW.kind, NEW.severity, NEW.title, NEW.description,
           NEW.opened_by, NEW.opened_at)
          IS DISTINCT FROM
          (OLD.id, OLD.batch_id, OLD.result_id, OLD.kind, OLD.severity, OLD.title, OLD.description,
           OLD.opened_by, OLD.opened_at) THEN
        RAISE EXCEPTION 'cellqc: a deviation is only ever closed, once'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER deviations_close_once BEFORE UPDATE ON deviations
    FOR EACH ROW EXECUTE FUNCTION cellqc_deviation_close_once();

-- A retried creating POST returns the first response (Idempotency-Key).
CREATE TABLE idempotency_keys (
    user_id       uuid        NOT NULL REFERENCES users (id),
    key           text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  text        NOT NULL,
    status        smallint    NOT NULL,
    response      jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
