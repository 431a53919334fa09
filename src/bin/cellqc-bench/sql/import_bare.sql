-- pgbench: the bare use case of POST /batches/{id}/results/import, the
-- fewest statements it needs, in one transaction: lock the batch row, keep
-- the file's bytes (sent by the client, as an import's are) with their
-- SHA-256, insert the batch row's two results, insert one audit entry after
-- the chain's head, move the head. No reading of the file: that is the
-- server's own work, and what the ratio shows.
-- Writes go to bench.* copies of the tables (same indexes, checks and keys).
\set n random(1, :targets)
BEGIN;
SELECT b.id FROM batches b JOIN bench.targets t ON t.batch_id = b.id WHERE t.n = :n FOR UPDATE OF b;
INSERT INTO bench.source_files (id, batch_id, filename, media_type, content, sha256, size, uploaded_by, uploaded_at)
  SELECT gen_random_uuid(), t.batch_id, 'counter.csv', 'text/csv', f.c, sha256(f.c), length(f.c), t.actor_id, now()
  FROM bench.targets t, (SELECT convert_to($export$EXPORT$export$, 'UTF8') AS c) f WHERE t.n = :n;
INSERT INTO bench.results (id, batch_id, test_code, value_text, value_numeric, unit, outcome, performed_by, performed_at, recorded_at)
  SELECT gen_random_uuid(), t.batch_id, v.code, v.txt, v.num, v.unit, 'pass', t.actor_id, now(), now()
  FROM bench.targets t, (VALUES ('DOSE', '1.1e8', 1.1e8, 'cells'), ('POT', '35', 35, 'pmol/h/1e6 cells')) v(code, txt, num, unit)
  WHERE t.n = :n;
INSERT INTO bench.audit_entries (id, chain_id, seq, at, actor_id, actor_username, actor_full_name, action, entity_type, entity_id, batch_id, after, prev_hash, hash)
  SELECT gen_random_uuid(), h.id, h.seq + 1, clock_timestamp(), u.id, u.username, u.full_name, 'results.imported', 'source_file', gen_random_uuid(),
         t.batch_id, '{"bench": true}'::jsonb, h.hash, sha256(h.hash || clock_timestamp()::text::bytea)
  FROM bench.audit_chain_heads h JOIN bench.targets t ON h.id = t.chain_id JOIN users u ON u.id = t.actor_id WHERE t.n = :n;
UPDATE bench.audit_chain_heads h SET seq = h.seq + 1, last_at = clock_timestamp(),
    hash = (SELECT a.hash FROM bench.audit_entries a WHERE a.chain_id = h.id AND a.seq = h.seq + 1)
  FROM bench.targets t WHERE t.n = :n AND h.id = t.chain_id;
COMMIT;
