-- pgbench: the bare use case of POST /batches/{id}/results, the fewest
-- statements it needs, in one transaction: lock the batch row and read the
-- facts fitness needs (the analyst's qualifications for the test, the
-- instrument's history) with it, insert the result, insert the audit entry
-- after the chain's head, move the head.
-- Writes go to bench.* copies of the tables (same indexes, checks and keys),
-- so no real hash chain gets a fake hash.
\set n random(1, :targets)
BEGIN;
SELECT b.id,
       ARRAY(SELECT q FROM qualifications q WHERE q.user_id = t.actor_id AND q.test_code = 'VIAB'),
       (SELECT e FROM instrument_events e WHERE e.instrument_id = t.instrument_id AND e.kind = 'calibration'
         AND e.at <= now() ORDER BY e.at DESC, e.id DESC LIMIT 1),
       (SELECT e FROM instrument_events e WHERE e.instrument_id = t.instrument_id
         AND NOT (e.kind = 'calibration' AND e.outcome = 'pass') AND e.at <= now() ORDER BY e.at DESC, e.id DESC LIMIT 1)
  FROM batches b JOIN bench.targets t ON t.batch_id = b.id WHERE t.n = :n FOR UPDATE OF b;
INSERT INTO bench.results (id, batch_id, test_code, value_text, value_numeric, unit, outcome, performed_by, performed_at, recorded_at, instrument_id)
  SELECT gen_random_uuid(), t.batch_id, 'VIAB', '91.5', 91.5, '%', 'pass', t.actor_id, now(), now(), t.instrument_id
  FROM bench.targets t WHERE t.n = :n;
INSERT INTO bench.audit_entries (id, chain_id, seq, at, actor_id, actor_username, actor_full_name, action, entity_type, entity_id, batch_id, after, prev_hash, hash)
  SELECT gen_random_uuid(), h.id, h.seq + 1, clock_timestamp(), u.id, u.username, u.full_name, 'result.recorded', 'result', gen_random_uuid(),
         t.batch_id, '{"bench": true}'::jsonb, h.hash, sha256(h.hash || clock_timestamp()::text::bytea)
  FROM bench.audit_chain_heads h JOIN bench.targets t ON h.id = t.chain_id JOIN users u ON u.id = t.actor_id WHERE t.n = :n;
UPDATE bench.audit_chain_heads h SET seq = h.seq + 1, last_at = clock_timestamp(),
    hash = (SELECT a.hash FROM bench.audit_entries a WHERE a.chain_id = h.id AND a.seq = h.seq + 1)
  FROM bench.targets t WHERE t.n = :n AND h.id = t.chain_id;
COMMIT;
