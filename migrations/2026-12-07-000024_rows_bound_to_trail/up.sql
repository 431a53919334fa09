-- What people read is what was signed (API v1.2, "The record people read is
-- the record that was signed"; DOMAIN "v1.2: integrity of what is read").
--
-- 1. Every GMP row is bound to the trail. Its bound form is the row as
--    PostgreSQL's jsonb writes it (time zone UTC, bytea as hex), without
--    the columns listed as unbound and without null members, so that a
--    nullable column added later leaves every earlier form as it was. Each
--    insert or change of such a row leaves (table, id, SHA-256 of the form)
--    pending in this transaction; the next audit entry of the row's chain
--    (the batch's, or the system chain) must cover exactly the pending rows
--    of that chain (`rows`, which the entry's hash covers) and takes them
--    off the list. At commit, a row still pending refuses the transaction:
--    also for cellqc_app, which can't write the list, skip the entry's check
--    or disable either trigger.
-- 2. A status that a signature decides changes only in a transaction that
--    inserts the matching signature row; which transaction inserted a
--    signature is kept with it (`xact`).
-- 3. Signatures carry the row they sign (`record_table`, `record_id`) and
--    an Ed25519 seal made by the server with the site's key; verification
--    recomputes both (the signed form's SQL is the code's, db::binding).
-- 4. Rows that exist now are listed in audit_rows_to_bind: the first start
--    after this migration binds them, chain by chain, with one entry each
--    (`record.bound_at_upgrade`), and seals the signatures made before seals
--    existed, once.

-- The tables bound, the columns outside their bound form, and the column
-- that names the batch whose chain binds a row (none: the system chain).
-- The code keeps the same list (db::binding::BOUND_TABLES); a test holds
-- them equal.
CREATE TABLE audit_bound_tables (
    tbl          text   PRIMARY KEY,
    unbound      text[] NOT NULL,
    batch_column text
);
INSERT INTO audit_bound_tables (tbl, unbound, batch_column) VALUES
    ('audit_reviews',     '{}', 'batch_id'),
    ('batch_parents',     '{}', 'batch_id'),
    ('batches',           '{}', 'id'),
    ('custody_events',    '{}', 'batch_id'),
    ('deviations',        '{}', 'batch_id'),
    ('import_mappings',   '{}', NULL),
    ('instrument_events', '{}', NULL),
    ('instruments',       '{}', NULL),
    ('material_lots',     '{}', NULL),
    ('material_uses',     '{}', 'batch_id'),
    ('products',          '{}', NULL),
    ('qualifications',    '{}', NULL),
    ('results',           '{}', 'batch_id'),
    ('signatures',        '{}', 'batch_id'),
    ('source_files',      '{}', 'batch_id'),
    ('spec_tests',        '{}', NULL),
    ('specifications',    '{}', NULL),
    -- The signing lockout's counter is state, not record: each failure and
    -- each lock has its own entry.
    ('users',             '{failed_logins,locked_until}', NULL);
CREATE TRIGGER audit_bound_tables_append_only BEFORE UPDATE OR DELETE ON audit_bound_tables
    FOR EACH ROW EXECUTE FUNCTION cellqc_refuse_change();

-- Two tables were keyed by their content; a bound row is named by an id.
-- (A return to the earlier version keeps the ids: the forms bound and
-- signed under them stay true.)
ALTER TABLE spec_tests ADD COLUMN IF NOT EXISTS id uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE spec_tests DROP CONSTRAINT IF EXISTS spec_tests_id_key;
ALTER TABLE spec_tests ADD CONSTRAINT spec_tests_id_key UNIQUE (id);
ALTER TABLE batch_parents ADD COLUMN IF NOT EXISTS id uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE batch_parents DROP CONSTRAINT IF EXISTS batch_parents_id_key;
ALTER TABLE batch_parents ADD CONSTRAINT batch_parents_id_key UNIQUE (id);

-- A custody event is bound by its entry, so it is written first: it keeps
-- the entry's id, position and previous hash, known before the entry is,
-- and reads the entry's own hash from the entry (a copy could not be in the
-- form the entry covers).
ALTER TABLE custody_events DROP COLUMN hash;
ALTER TABLE custody_events ALTER CONSTRAINT custody_events_audit_entry_id_fkey
    DEFERRABLE INITIALLY DEFERRED;

-- The rows an entry covers: [{"hash", "id", "table"}], in (table, id) order.
-- (Kept by a return to the earlier version when entries already cover rows.)
ALTER TABLE audit_entries ADD COLUMN IF NOT EXISTS rows jsonb;

-- Rows written and not yet covered by an entry, per transaction. Empty
-- between transactions: an entry takes its rows off, and a transaction that
-- leaves one here does not commit.
CREATE UNLOGGED TABLE audit_rows_pending (
    xact     xid8   NOT NULL,
    batch_id uuid,
    tbl      text   NOT NULL,
    id       uuid   NOT NULL,
    hash     bytea  NOT NULL,
    PRIMARY KEY (xact, tbl, id)
);

CREATE FUNCTION cellqc_row_written() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp SET TimeZone = 'UTC' SET bytea_output = 'hex' AS $$
DECLARE
    unbound text[] := TG_ARGV[0]::text[];
    row_json jsonb := to_jsonb(NEW);
    form jsonb := jsonb_strip_nulls(row_json - unbound);
BEGIN
    IF TG_OP = 'UPDATE' AND form = jsonb_strip_nulls(to_jsonb(OLD) - unbound) THEN
        RETURN NULL;
    END IF;
    INSERT INTO audit_rows_pending (xact, batch_id, tbl, id, hash)
    VALUES (pg_current_xact_id(),
            CASE WHEN TG_ARGV[1] = '' THEN NULL ELSE (row_json ->> TG_ARGV[1])::uuid END,
            TG_TABLE_NAME, NEW.id, sha256(convert_to(form::text, 'UTF8')))
    ON CONFLICT (xact, tbl, id) DO UPDATE SET hash = EXCLUDED.hash, batch_id = EXCLUDED.batch_id;
    RETURN NULL;
END;
$$;

DO $$
DECLARE t record;
BEGIN
    FOR t IN SELECT * FROM audit_bound_tables LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT OR UPDATE ON %I FOR EACH ROW '
            'EXECUTE FUNCTION cellqc_row_written(%L, %L)',
            t.tbl || '_bound', t.tbl, t.unbound::text, coalesce(t.batch_column, ''));
    END LOOP;
END;
$$;

CREATE FUNCTION cellqc_row_bound_at_commit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_rows_pending
                WHERE xact = NEW.xact AND tbl = NEW.tbl AND id = NEW.id) THEN
        RAISE EXCEPTION 'cellqc: % row % was written without the audit entry that covers it',
            NEW.tbl, NEW.id
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'every insert or change of a GMP row appends its audit entry in the same transaction';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER audit_rows_pending_bound AFTER INSERT OR UPDATE ON audit_rows_pending
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION cellqc_row_bound_at_commit();

-- An entry covers exactly the pending rows of its chain, and takes them off.
CREATE FUNCTION cellqc_entry_binds_rows() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    chain_name text;
    batch uuid;
    pending jsonb;
BEGIN
    SELECT chain INTO chain_name FROM audit_chain_heads WHERE id = NEW.chain_id;
    IF chain_name LIKE 'batch:%' THEN
        batch := substr(chain_name, 7)::uuid;
    END IF;
    SELECT jsonb_agg(jsonb_build_object('hash', encode(p.hash, 'hex'), 'id', p.id, 'table', p.tbl)
                     ORDER BY p.tbl COLLATE "C", p.id)
      INTO pending
      FROM audit_rows_pending p
     WHERE p.xact = pg_current_xact_id() AND p.batch_id IS NOT DISTINCT FROM batch;
    IF NEW.rows IS DISTINCT FROM pending THEN
        RAISE EXCEPTION 'cellqc: an entry of chain % covers %, but the rows written on it are %',
            chain_name, coalesce(NEW.rows::text, 'none'), coalesce(pending::text, 'none')
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF pending IS NOT NULL THEN
        DELETE FROM audit_rows_pending p
         WHERE p.xact = pg_current_xact_id() AND p.batch_id IS NOT DISTINCT FROM batch;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_entries_bind_rows BEFORE INSERT ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION cellqc_entry_binds_rows();

-- Signatures: the row signed, the seal, and the transaction that signed.
ALTER TABLE signatures
    ADD COLUMN record_table text,
    ADD COLUMN record_id uuid,
    ADD COLUMN seal bytea CHECK (octet_length(seal) = 64),
    ADD COLUMN xact xid8,
    ADD CONSTRAINT signatures_record_named CHECK ((record_table IS NULL) = (record_id IS NULL));
CREATE FUNCTION cellqc_signature_xact() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.xact := pg_current_xact_id();
    RETURN NEW;
END;
$$;
CREATE TRIGGER signatures_xact BEFORE INSERT ON signatures
    FOR EACH ROW EXECUTE FUNCTION cellqc_signature_xact();

-- A signature is never changed, but for the one seal a signature made before
-- seals existed gets when the rows of that time are bound.
DROP TRIGGER signatures_append_only ON signatures;
CREATE FUNCTION cellqc_signature_sealed_once() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.seal IS NULL AND NEW.seal IS NOT NULL
       AND to_jsonb(NEW) - 'seal' = to_jsonb(OLD) - 'seal'
       AND EXISTS (SELECT 1 FROM audit_rows_to_bind b WHERE b.tbl = 'signatures' AND b.id = OLD.id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'cellqc: % on signatures is refused: this record is kept, never changed or deleted',
        TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER signatures_append_only BEFORE UPDATE OR DELETE ON signatures
    FOR EACH ROW EXECUTE FUNCTION cellqc_signature_sealed_once();

-- Whether this transaction inserted a signature of one of `meanings` on the record.
CREATE FUNCTION cellqc_signed_now(kind text, entity uuid, meanings text[]) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM signatures s
                    WHERE s.entity_type = kind AND s.entity_id = entity
                      AND s.meaning = ANY (meanings) AND s.xact = pg_current_xact_id())
$$;

-- Batches: the transitions there are, each with its signature.
CREATE FUNCTION cellqc_batch_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status
       AND NOT ((OLD.status = 'quarantine' AND NEW.status IN ('conditionally_released', 'released', 'rejected'))
             OR (OLD.status = 'conditionally_released' AND NEW.status IN ('released', 'rejected', 'recalled'))
             OR (OLD.status = 'released' AND NEW.status = 'recalled')) THEN
        RAISE EXCEPTION 'cellqc: a batch does not move from % to %', OLD.status, NEW.status
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER batches_transition BEFORE UPDATE ON batches
    FOR EACH ROW EXECUTE FUNCTION cellqc_batch_transition();

CREATE FUNCTION cellqc_batch_status_signed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status
       AND NOT cellqc_signed_now('batch', NEW.id, ARRAY[NEW.status]) THEN
        RAISE EXCEPTION 'cellqc: batch % became % without its % signature in the same transaction',
            NEW.batch_number, NEW.status, NEW.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER batches_status_signed AFTER UPDATE ON batches
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION cellqc_batch_status_signed();

-- Deviations: closed with a signature.
CREATE FUNCTION cellqc_deviation_close_signed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status
       AND NOT cellqc_signed_now('deviation', NEW.id, ARRAY['deviation_closed']) THEN
        RAISE EXCEPTION 'cellqc: deviation % was closed without its deviation_closed signature in the same transaction',
            NEW.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER deviations_close_signed AFTER UPDATE ON deviations
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION cellqc_deviation_close_signed();

-- Specifications: effective by their approval; superseded by the approval
-- of another version of the same product.
CREATE FUNCTION cellqc_spec_status_signed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
        (NEW.status = 'effective' AND cellqc_signed_now('specification', NEW.id, ARRAY['spec_approved']))
        OR (NEW.status = 'superseded' AND EXISTS (
            SELECT 1 FROM specifications o
             WHERE o.product_id = NEW.product_id AND o.id <> NEW.id
               AND cellqc_signed_now('specification', o.id, ARRAY['spec_approved'])))) THEN
        RAISE EXCEPTION 'cellqc: specification % became % without the approval that decides it in the same transaction',
            NEW.id, NEW.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER specifications_status_signed AFTER UPDATE ON specifications
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION cellqc_spec_status_signed();

-- Material lots: released or rejected with the matching signature.
CREATE FUNCTION cellqc_material_status_signed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status
       AND NOT cellqc_signed_now('material', NEW.id, ARRAY['material_' || NEW.status]) THEN
        RAISE EXCEPTION 'cellqc: material lot % became % without its signature in the same transaction',
            NEW.id, NEW.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER material_lots_status_signed AFTER UPDATE ON material_lots
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION cellqc_material_status_signed();

-- Qualifications: granted and revoked with their signatures.
CREATE FUNCTION cellqc_qualification_signed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NOT cellqc_signed_now('qualification', NEW.id, ARRAY['qualification_granted']) THEN
        RAISE EXCEPTION 'cellqc: qualification % was granted without its signature in the same transaction', NEW.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
       AND NOT cellqc_signed_now('qualification', NEW.id, ARRAY['qualification_revoked']) THEN
        RAISE EXCEPTION 'cellqc: qualification % was revoked without its signature in the same transaction', NEW.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER qualifications_signed AFTER INSERT OR UPDATE ON qualifications
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION cellqc_qualification_signed();

-- An instrument returns to service with QA's signature.
CREATE FUNCTION cellqc_instrument_return_signed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.kind = 'returned'
       AND NOT cellqc_signed_now('instrument', NEW.instrument_id, ARRAY['instrument_returned']) THEN
        RAISE EXCEPTION 'cellqc: instrument % returned to service without its signature in the same transaction',
            NEW.instrument_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER instrument_events_return_signed AFTER INSERT ON instrument_events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION cellqc_instrument_return_signed();

-- An audit-trail review is the signature it names, made in the same transaction.
CREATE FUNCTION cellqc_audit_review_signed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM signatures s
                    WHERE s.id = NEW.signature_id AND s.meaning = 'audit_trail_reviewed'
                      AND s.entity_id = NEW.batch_id AND s.xact = pg_current_xact_id()) THEN
        RAISE EXCEPTION 'cellqc: the audit-trail review % names no review signature of this transaction', NEW.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER audit_reviews_signed AFTER INSERT ON audit_reviews
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION cellqc_audit_review_signed();

-- The rows that exist now, bound at the first start after this migration.
CREATE TABLE audit_rows_to_bind (
    tbl      text NOT NULL,
    id       uuid NOT NULL,
    batch_id uuid,
    PRIMARY KEY (tbl, id)
);
CREATE INDEX audit_rows_to_bind_batch ON audit_rows_to_bind (batch_id);
DO $$
DECLARE t record;
BEGIN
    FOR t IN SELECT * FROM audit_bound_tables LOOP
        EXECUTE format('INSERT INTO audit_rows_to_bind (tbl, id, batch_id) SELECT %L, r.id, %s FROM %I r',
            t.tbl, CASE WHEN t.batch_column IS NULL THEN 'NULL::uuid' ELSE 'r.' || quote_ident(t.batch_column) END,
            t.tbl);
    END LOOP;
END;
$$;

-- Puts the listed rows of one chain (a batch's; NULL: the system chain) on
-- the pending list with their forms as they are, and off the list to bind;
-- the caller then appends the entry that covers them.
CREATE FUNCTION cellqc_pend_rows_to_bind(batch uuid) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp SET TimeZone = 'UTC' SET bytea_output = 'hex' AS $$
DECLARE
    t record;
    n integer := 0;
    added integer;
BEGIN
    FOR t IN SELECT * FROM audit_bound_tables LOOP
        EXECUTE format(
            'INSERT INTO audit_rows_pending (xact, batch_id, tbl, id, hash) '
            'SELECT pg_current_xact_id(), $1, %L, r.id, '
            '       sha256(convert_to(jsonb_strip_nulls(to_jsonb(r) - %L::text[])::text, ''UTF8'')) '
            '  FROM %I r JOIN audit_rows_to_bind b ON b.tbl = %L AND b.id = r.id '
            ' WHERE b.batch_id IS NOT DISTINCT FROM $1 '
            'ON CONFLICT (xact, tbl, id) DO UPDATE SET hash = EXCLUDED.hash',
            t.tbl, t.unbound::text, t.tbl, t.tbl)
        USING batch;
        GET DIAGNOSTICS added = ROW_COUNT;
        n := n + added;
    END LOOP;
    DELETE FROM audit_rows_to_bind WHERE batch_id IS NOT DISTINCT FROM batch;
    RETURN n;
END;
$$;
REVOKE EXECUTE ON FUNCTION cellqc_pend_rows_to_bind(uuid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION cellqc_signed_now(text, uuid, text[]) FROM PUBLIC;

GRANT SELECT ON audit_rows_pending, audit_bound_tables, audit_rows_to_bind TO cellqc_app;
