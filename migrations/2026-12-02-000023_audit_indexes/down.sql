DROP INDEX audit_entries_entity;
CREATE INDEX audit_entries_entity ON audit_entries (entity_type, entity_id, id);
DROP INDEX audit_entries_at;
CREATE INDEX audit_entries_at ON audit_entries (at, id);
