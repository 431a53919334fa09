-- Chain of custody: each event is an entry of the batch's audit hash chain,
-- whose seq, prev_hash and hash it carries.

CREATE TABLE custody_events (
    id             uuid        PRIMARY KEY,
    batch_id       uuid        NOT NULL REFERENCES batches (id),
    event          text        NOT NULL
        CHECK (event IN ('received', 'stored', 'shipped', 'delivered', 'administered', 'destroyed')),
    occurred_at    timestamptz NOT NULL,
    location       text        NOT NULL CHECK (length(btrim(location)) > 0),
    party          text        NOT NULL CHECK (length(btrim(party)) > 0),
    temperature_c  text,
    excursion      boolean     NOT NULL DEFAULT false,
    container_id   text,
    recipient_id   text,
    internal       boolean     NOT NULL DEFAULT false,
    notes          text,
    deviation_id   uuid        REFERENCES deviations (id),
    recorded_by    uuid        NOT NULL REFERENCES users (id),
    recorded_at    timestamptz NOT NULL,
    audit_entry_id uuid        NOT NULL UNIQUE REFERENCES audit_entries (id),
    seq            bigint      NOT NULL,
    prev_hash      text        NOT NULL,
    hash           text        NOT NULL,
    UNIQUE (batch_id, seq),
    CHECK (event <> 'administered' OR length(btrim(recipient_id)) > 0),
    CHECK (excursion = (deviation_id IS NOT NULL))
);
CREATE INDEX custody_events_batch ON custody_events (batch_id, seq);
CREATE TRIGGER custody_events_append_only BEFORE UPDATE OR DELETE ON custody_events
    FOR EACH ROW EXECUTE FUNCTION cellqc_refuse_change();
CREATE TRIGGER custody_events_no_truncate BEFORE TRUNCATE ON custody_events
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();
