-- Foundation: users, sessions, the audit trail and the email outbox.

-- Refuses a change on a table whose rows are facts. Used by the append-only
-- tables (UPDATE, DELETE, TRUNCATE) and by users (DELETE: usernames are never reused).
CREATE FUNCTION cellqc_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cellqc: % on % is refused: this record is kept, never changed or deleted',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TABLE users (
    id                  uuid        PRIMARY KEY,
    username            text        NOT NULL,
    full_name           text        NOT NULL CHECK (length(btrim(full_name)) > 0),
    email               text        NOT NULL CHECK (position('@' in email) > 1),
    roles               text[]      NOT NULL,
    active              boolean     NOT NULL DEFAULT true,
    password_hash       text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    failed_logins       integer     NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until        timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_username_format CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    CONSTRAINT users_roles_known CHECK (
        cardinality(roles) >= 1
        AND roles <@ ARRAY['technician', 'reviewer', 'qa', 'auditor', 'admin']::text[]
    )
);
CREATE UNIQUE INDEX users_username_key ON users (username);

-- A user is deactivated, never deleted; a username is never renamed away.
CREATE TRIGGER users_no_delete BEFORE DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();
CREATE FUNCTION cellqc_username_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.username IS DISTINCT FROM OLD.username OR NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION 'cellqc: a username is never changed or reassigned'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER users_username_immutable BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION cellqc_username_immutable();

-- One row per sign-in. The token carries the session id; logout, deactivation
-- and idle timeout set revoked_at, which every request checks.
CREATE TABLE sessions (
    id             uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL REFERENCES users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text,
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
CREATE INDEX sessions_user_live ON sessions (user_id) WHERE revoked_at IS NULL;

-- The head of each hash chain: the last sequence number and hash written.
-- Writers lock this row, so two writers never read the same tail.
CREATE TABLE audit_chain_heads (
    chain   text        PRIMARY KEY,
    seq     bigint      NOT NULL CHECK (seq >= 0),
    hash    text        NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    last_at timestamptz NOT NULL DEFAULT '-infinity'
);

CREATE TABLE audit_entries (
    id              uuid        PRIMARY KEY,
    chain           text        NOT NULL REFERENCES audit_chain_heads (chain),
    seq             bigint      NOT NULL CHECK (seq >= 1),
    at              timestamptz NOT NULL,
    actor_id        uuid        REFERENCES users (id),
    actor_username  text,
    actor_full_name text,
    action          text        NOT NULL,
    entity_type     text        NOT NULL,
    entity_id       uuid,
    batch_id        uuid,
    reason          text,
    before          jsonb,
    after           jsonb,
    prev_hash       text        NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash            text        NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    -- A fork (two entries after the same one) cannot be written.
    CONSTRAINT audit_entries_chain_seq UNIQUE (chain, seq),
    CONSTRAINT audit_entries_chain_prev UNIQUE (chain, prev_hash),
    CHECK ((actor_id IS NULL) = (actor_username IS NULL)
           AND (actor_id IS NULL) = (actor_full_name IS NULL))
);
CREATE INDEX audit_entries_entity ON audit_entries (entity_type, entity_id, id);
CREATE INDEX audit_entries_actor ON audit_entries (actor_id, id);
CREATE INDEX audit_entries_batch ON audit_entries (batch_id, id) WHERE batch_id IS NOT NULL;
CREATE INDEX audit_entries_at ON audit_entries (at, id);

CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION cellqc_refuse_change();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();

-- Emails waiting to be sent, written in the transaction that decided them.
CREATE TABLE email_outbox (
    id              uuid        PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    kind            text        NOT NULL,
    recipients      text[]      NOT NULL CHECK (cardinality(recipients) >= 1),
    subject         text        NOT NULL,
    body            text        NOT NULL,
    urgent          boolean     NOT NULL DEFAULT false,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    last_error      text
);
CREATE INDEX email_outbox_pending ON email_outbox (next_attempt_at) WHERE sent_at IS NULL;
