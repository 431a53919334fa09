-- Signed anchors of the audit trail: a Merkle root over every chain's head,
-- signed with an Ed25519 key kept outside the database. The rows here are a
-- convenience copy; the copies that count are the files and emails that the
-- database's operators can't reach. Append-only like the trail.
CREATE TABLE audit_anchors (
    id         uuid        PRIMARY KEY,
    created_at timestamptz NOT NULL,
    created_by uuid        REFERENCES users (id),
    chains     bigint      NOT NULL CHECK (chains >= 0),
    entries    bigint      NOT NULL CHECK (entries >= 0),
    root       text        NOT NULL CHECK (root ~ '^[0-9a-f]{64}$'),
    key_id     text        NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    signature  text        NOT NULL CHECK (signature ~ '^[0-9a-f]{128}$'),
    heads      jsonb       NOT NULL CHECK (jsonb_typeof(heads) = 'array')
);
CREATE INDEX audit_anchors_created ON audit_anchors (created_at, id);

CREATE TRIGGER audit_anchors_append_only BEFORE UPDATE OR DELETE ON audit_anchors
    FOR EACH ROW EXECUTE FUNCTION cellqc_refuse_change();
CREATE TRIGGER audit_anchors_no_truncate BEFORE TRUNCATE ON audit_anchors
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();

GRANT SELECT, INSERT ON audit_anchors TO cellqc_app;
