-- Back to hex text and chains named by text; every hash as it was.
ALTER TABLE signatures
    DROP CONSTRAINT signatures_record_hash_check,
    ALTER COLUMN record_hash TYPE text USING encode(record_hash, 'hex'),
    ADD CONSTRAINT signatures_record_hash_check CHECK (record_hash ~ '^[0-9a-f]{64}$');
ALTER TABLE audit_reviews
    DROP CONSTRAINT audit_reviews_head_hash_check,
    ALTER COLUMN head_hash TYPE text USING encode(head_hash, 'hex'),
    ADD CONSTRAINT audit_reviews_head_hash_check CHECK (head_hash ~ '^[0-9a-f]{64}$');
ALTER TABLE custody_events
    DROP CONSTRAINT custody_events_prev_hash_check,
    DROP CONSTRAINT custody_events_hash_check,
    ALTER COLUMN prev_hash TYPE text USING encode(prev_hash, 'hex'),
    ALTER COLUMN hash TYPE text USING encode(hash, 'hex');

CREATE OR REPLACE FUNCTION cellqc_head_advances() RETURNS trigger
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

CREATE FUNCTION cellqc_chain_name(key bigint) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT chain FROM audit_chain_heads WHERE id = key $$;

DROP INDEX audit_entries_batch;
CREATE INDEX audit_entries_batch ON audit_entries (batch_id, id) WHERE batch_id IS NOT NULL;

ALTER TABLE audit_entries DROP CONSTRAINT audit_entries_chain_id_fkey;
ALTER TABLE audit_entries RENAME CONSTRAINT audit_entries_chain_id_seq TO audit_entries_chain_seq;
ALTER TABLE audit_entries RENAME COLUMN chain_id TO chain;
ALTER TABLE audit_entries
    DROP CONSTRAINT audit_entries_prev_hash_check,
    DROP CONSTRAINT audit_entries_hash_check,
    ALTER COLUMN chain TYPE text USING cellqc_chain_name(chain),
    ALTER COLUMN prev_hash TYPE text USING encode(prev_hash, 'hex'),
    ALTER COLUMN hash TYPE text USING encode(hash, 'hex'),
    ADD CONSTRAINT audit_entries_prev_hash_check CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT audit_entries_hash_check CHECK (hash ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT audit_entries_chain_prev UNIQUE (chain, prev_hash);
DROP FUNCTION cellqc_chain_name(bigint);

ALTER TABLE audit_chain_heads DROP CONSTRAINT audit_chain_heads_pkey;
ALTER TABLE audit_chain_heads DROP CONSTRAINT audit_chain_heads_chain_key;
ALTER TABLE audit_chain_heads ADD PRIMARY KEY (chain);
ALTER TABLE audit_chain_heads
    DROP CONSTRAINT audit_chain_heads_hash_check,
    ALTER COLUMN hash TYPE text USING encode(hash, 'hex'),
    ADD CONSTRAINT audit_chain_heads_hash_check CHECK (hash ~ '^[0-9a-f]{64}$'),
    DROP COLUMN id;
ALTER TABLE audit_entries ADD CONSTRAINT audit_entries_chain_fkey
    FOREIGN KEY (chain) REFERENCES audit_chain_heads (chain);
