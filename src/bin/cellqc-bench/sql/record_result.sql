-- pgbench: the statements POST /batches/{id}/results sends (a passing
-- result): the session check, then in one transaction the batch row lock,
-- the batch record read (LOAD, filled in from the server's own constant),
-- the fitness read (FITNESS, likewise: viability needs a qualified analyst
-- on a flow cytometer), the result's insert and the audit entry written with the head's move in
-- one statement. Writes go to bench.* copies.
\set n random(1, :targets)
SELECT s.*, u.* FROM sessions s JOIN users u ON u.id = s.user_id
 WHERE s.id = (SELECT id FROM sessions ORDER BY id DESC LIMIT 1);
BEGIN;
SELECT id FROM batches WHERE id = (SELECT batch_id FROM bench.targets WHERE n = :n) FOR UPDATE;
LOAD;
FITNESS;
INSERT INTO bench.results (id, batch_id, test_code, value_text, value_numeric, unit, outcome, performed_by, performed_at, recorded_at, instrument_id)
  SELECT gen_random_uuid(), t.batch_id, 'VIAB', '91.5', 91.5, '%', 'pass', t.actor_id, now(), now(), t.instrument_id
  FROM bench.targets t WHERE t.n = :n;
WITH e AS (
  INSERT INTO bench.audit_entries (id, chain_id, seq, at, actor_id, actor_username, actor_full_name, action, entity_type, entity_id, batch_id, after, prev_hash, hash)
  SELECT gen_random_uuid(), h.id, h.seq + 1, clock_timestamp(), u.id, u.username, u.full_name, 'result.recorded', 'result', gen_random_uuid(),
         t.batch_id, '{"bench": true}'::jsonb, h.hash, sha256(h.hash || clock_timestamp()::text::bytea)
  FROM bench.audit_chain_heads h JOIN bench.targets t ON h.id = t.chain_id JOIN users u ON u.id = t.actor_id WHERE t.n = :n
  RETURNING chain_id, seq, hash, at, before, after)
UPDATE bench.audit_chain_heads h SET seq = e.seq, hash = e.hash, last_at = e.at FROM e
 WHERE h.id = e.chain_id AND h.seq = e.seq - 1 RETURNING e.before, e.after;
COMMIT;
