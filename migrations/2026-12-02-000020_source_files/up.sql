-- Results imported from an instrument's export keep the export itself: the
-- file as uploaded, byte for byte, is a true copy (21 CFR 11.10(b); ALCOA+
-- "original"). The database holds the file's SHA-256 equal to its bytes and
-- never lets it change; each imported result names its file.

CREATE TABLE source_files (
    id          uuid        PRIMARY KEY,
    batch_id    uuid        NOT NULL REFERENCES batches (id),
    filename    text        NOT NULL CHECK (length(btrim(filename)) BETWEEN 1 AND 255),
    media_type  text        NOT NULL CHECK (media_type IN ('text/csv', 'text/tab-separated-values')),
    content     bytea       NOT NULL CHECK (octet_length(content) > 0),
    -- Checked against the bytes by the database itself.
    sha256      bytea       NOT NULL CHECK (sha256 = sha256(content)),
    size        integer     NOT NULL CHECK (size = octet_length(content)),
    uploaded_by uuid        NOT NULL REFERENCES users (id),
    uploaded_at timestamptz NOT NULL
);
CREATE INDEX source_files_batch ON source_files (batch_id);
CREATE TRIGGER source_files_append_only BEFORE UPDATE OR DELETE ON source_files
    FOR EACH ROW EXECUTE FUNCTION cellqc_refuse_change();
CREATE TRIGGER source_files_no_truncate BEFORE TRUNCATE ON source_files
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();

ALTER TABLE results ADD COLUMN source_file_id uuid REFERENCES source_files (id);

-- Saved mappings of an export's column headers to a product's test codes,
-- kept by QA. A mapping is replaced or retired, never edited in place
-- without its audit entry; at most one current mapping per name.
CREATE TABLE import_mappings (
    id          uuid        PRIMARY KEY,
    product_id  uuid        NOT NULL REFERENCES products (id),
    name        text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 80),
    -- {"TEST_CODE": "column header", ...}
    mapping     jsonb       NOT NULL CHECK (jsonb_typeof(mapping) = 'object' AND mapping <> '{}'::jsonb),
    created_by  uuid        NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL,
    updated_by  uuid        NOT NULL REFERENCES users (id),
    updated_at  timestamptz NOT NULL,
    retired_at  timestamptz
);
CREATE UNIQUE INDEX import_mappings_current ON import_mappings (product_id, lower(name))
    WHERE retired_at IS NULL;
CREATE TRIGGER import_mappings_no_delete BEFORE DELETE OR TRUNCATE ON import_mappings
    FOR EACH STATEMENT EXECUTE FUNCTION cellqc_refuse_change();
-- A mapping keeps its product and creation; once retired it never changes.
CREATE FUNCTION cellqc_import_mapping_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.product_id, NEW.created_by, NEW.created_at)
       IS DISTINCT FROM (OLD.id, OLD.product_id, OLD.created_by, OLD.created_at)
       OR OLD.retired_at IS NOT NULL THEN
        RAISE EXCEPTION 'cellqc: an import mapping keeps its product and creation, and a retired one never changes'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER import_mappings_change BEFORE UPDATE ON import_mappings
    FOR EACH ROW EXECUTE FUNCTION cellqc_import_mapping_change();

GRANT SELECT, INSERT ON source_files TO cellqc_app;
GRANT SELECT, INSERT, UPDATE ON import_mappings TO cellqc_app;
