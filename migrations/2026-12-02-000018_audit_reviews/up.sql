-- Audit-trail review before release (PIC/S PI 041 §9.8; FDA data-integrity
-- Q&A 2018, Q7): QA signs that they read the exceptions of a batch's hash
-- chain up to a known position. A product may require it before release.

ALTER TABLE products ADD COLUMN audit_review_required boolean NOT NULL DEFAULT false;

ALTER TABLE signatures DROP CONSTRAINT signatures_meaning_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_meaning_check CHECK (meaning IN (
    'reviewed', 'review_rejected', 'spec_approved', 'released', 'conditionally_released',
    'rejected', 'recalled', 'deviation_closed', 'qualification_granted', 'qualification_revoked',
    'instrument_returned', 'material_released', 'material_rejected', 'audit_trail_reviewed'));

-- One row per signed review: the chain position (seq and the entry's hash)
-- the signature covers. Append-only, like the signature it belongs to.
CREATE TABLE audit_reviews (
    id           uuid        PRIMARY KEY,
    batch_id     uuid        NOT NULL REFERENCES batches (id),
    signature_id uuid        NOT NULL UNIQUE REFERENCES signatures (id),
    up_to_seq    bigint      NOT NULL CHECK (up_to_seq >= 1),
    head_hash    text        NOT NULL CHECK (head_hash ~ '^[0-9a-f]{64}$'),
    exceptions   integer     NOT NULL CHECK (exceptions >= 0),
    reviewed_at  timestamptz NOT NULL
);
CREATE INDEX audit_reviews_batch ON audit_reviews (batch_id, up_to_seq);
CREATE TRIGGER audit_reviews_append_only BEFORE UPDATE OR DELETE ON audit_reviews
    FOR EACH ROW EXECUTE FUNCTION cellqc_refuse_change();
CREATE TRIGGER audit_reviews_no_truncate BEFORE TRUNCATE ON audit_reviews
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();

GRANT SELECT, INSERT ON audit_reviews TO cellqc_app;
