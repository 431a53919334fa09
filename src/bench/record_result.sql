-- pgbench: the SQL of POST /batches/{id}/results (one result, no OOS).
-- Reads from the real tables; writes go to bench.* copies of results and the
-- audit tables (same indexes and keys), so no real hash chain is touched.
\set n random(1, :targets)
BEGIN;
SELECT b.id FROM batches b JOIN bench.targets t ON t.batch_id = b.id WHERE t.n = :n FOR UPDATE OF b;
SELECT s.code, s.kind, s.unit, s.min_text, s.max_text FROM spec_tests s JOIN batches b ON b.spec_id = s.spec_id JOIN bench.targets t ON t.batch_id = b.id WHERE t.n = :n;
SELECT r.id, r.test_code, r.outcome FROM results r JOIN bench.targets t ON t.batch_id = r.batch_id WHERE t.n = :n;
INSERT INTO bench.results (id, batch_id, test_code, value_text, value_numeric, unit, outcome, performed_by, performed_at, recorded_at)
  SELECT gen_random_uuid(), b.id, 'VIAB', '91.5', 91.5, '%', 'pass', b.created_by, now(), now()
  FROM batches b JOIN bench.targets t ON t.batch_id = b.id WHERE t.n = :n;
SELECT h.seq, h.hash FROM bench.audit_chain_heads h JOIN bench.targets t ON h.chain = t.chain WHERE t.n = :n FOR UPDATE OF h;
INSERT INTO bench.audit_entries (id, chain, seq, at, actor_id, actor_username, actor_full_name, action, entity_type, entity_id, batch_id, after, prev_hash, hash)
  SELECT gen_random_uuid(), h.chain, h.seq + 1, clock_timestamp(), u.id, u.username, u.full_name, 'result.recorded', 'result', gen_random_uuid(),
         t.batch_id, '{"bench": true}'::jsonb, h.hash, encode(sha256((h.hash || clock_timestamp()::text)::bytea), 'hex')
  FROM bench.audit_chain_heads h JOIN bench.targets t ON h.chain = t.chain JOIN batches b ON b.id = t.batch_id
  JOIN users u ON u.id = b.created_by WHERE t.n = :n;
UPDATE bench.audit_chain_heads h SET seq = e.seq, hash = e.hash, last_at = e.at
  FROM (SELECT a.chain, a.seq, a.hash, a.at FROM bench.audit_entries a JOIN bench.targets t ON a.chain = t.chain
        WHERE t.n = :n ORDER BY a.seq DESC LIMIT 1) e
  WHERE h.chain = e.chain;
COMMIT;
