-- The trail's secondary indexes, each as narrow as its query needs.
--
-- By time: entries are appended in time order (a chain's time never runs
-- backwards, and every chain is written now), so the table's blocks follow
-- `at`, and a block-range index finds a window as well as a b-tree of every
-- entry did, in kilobytes instead of gigabytes. Neither gives the listing's
-- id order: both read the window and sort it.
DROP INDEX audit_entries_at;
CREATE INDEX audit_entries_at ON audit_entries USING brin (at);

-- By record: an entity id names one record, whose entries are a handful, so
-- neither its kind nor the id order needs to be in the key.
DROP INDEX audit_entries_entity;
CREATE INDEX audit_entries_entity ON audit_entries (entity_id);
