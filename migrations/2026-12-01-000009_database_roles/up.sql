-- Least privilege at run time (ARCHITECTURE "Database roles"). The server's
-- pool connects as cellqc_app: it reads, appends, and updates only the few
-- rows that are state rather than facts. It deletes and truncates nothing,
-- owns nothing (so it can't disable a trigger) and is no superuser (so it
-- can't set session_replication_role). Migrations run as the schema's owner
-- (cellqc_owner in the embedded cluster, CELLQC_OWNER_DATABASE_URL otherwise).

-- The embedded cluster creates both roles before migrating; with
-- DATABASE_URL an operator creates them (README, "Database roles"). A role
-- allowed to create roles creates the app role here when it is missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cellqc_app') THEN
        BEGIN
            CREATE ROLE cellqc_app NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by another database's migration
        END;
    END IF;
END;
$$;

-- Nobody but the owner creates objects in the schema.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO cellqc_app;

-- Facts: read and append.
GRANT SELECT, INSERT ON
    users, sessions, audit_chain_heads, audit_entries, email_outbox,
    products, specifications, spec_tests, batches, batch_parents, results,
    signatures, deviations, idempotency_keys, custody_events
TO cellqc_app;

-- State: a batch's status, a specification's status, a deviation's closure,
-- chain heads, accounts, sessions, the outbox and idempotency answers.
GRANT UPDATE ON
    users, sessions, audit_chain_heads, email_outbox, specifications,
    batches, deviations, idempotency_keys
TO cellqc_app;

-- Approving a specification locks its product's row (FOR UPDATE) so that two
-- approvals of one product's versions queue; a row lock needs an UPDATE
-- right. This one column's is enough, and products_append_only refuses any
-- actual change.
GRANT UPDATE (id) ON products TO cellqc_app;

-- A chain's head is state the app must move, but only forward, one entry at
-- a time, as the statement that appends an entry does. Moved back, a head
-- would hide a tail that plain verification then reports as a gap; refused
-- here, the app role can't even try.
CREATE FUNCTION cellqc_head_advances() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.chain IS DISTINCT FROM OLD.chain OR NEW.seq IS DISTINCT FROM OLD.seq + 1 THEN
        RAISE EXCEPTION 'cellqc: the head of chain % moves forward by one entry only (% -> %)',
            OLD.chain, OLD.seq, NEW.seq
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_chain_heads_advance BEFORE UPDATE ON audit_chain_heads
    FOR EACH ROW EXECUTE FUNCTION cellqc_head_advances();
CREATE TRIGGER audit_chain_heads_no_delete BEFORE DELETE OR TRUNCATE ON audit_chain_heads
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();

-- The reviewers' work list is kept by triggers that run with their owner's
-- rights: the app reads it and never deletes from it itself.
GRANT SELECT ON results_awaiting_review TO cellqc_app;
ALTER FUNCTION cellqc_result_awaits_review() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION cellqc_result_reviewed() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION cellqc_result_invalidated() SECURITY DEFINER SET search_path = public, pg_temp;

-- Readiness asks whether every migration is applied.
GRANT SELECT ON __diesel_schema_migrations TO cellqc_app;
