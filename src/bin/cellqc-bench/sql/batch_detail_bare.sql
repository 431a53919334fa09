-- pgbench: the bare use case of GET /batches/{id}, three selects: the
-- session check, the batch row, its results.
\set n random(1, :targets)
SELECT s.id, s.revoked_at, s.last_seen_at, s.expires_at, u.id, u.roles, u.active
  FROM sessions s JOIN users u ON u.id = s.user_id
 WHERE s.id = (SELECT id FROM sessions ORDER BY id DESC LIMIT 1);
SELECT b.* FROM batches b JOIN bench.targets t ON t.batch_id = b.id WHERE t.n = :n;
SELECT r.* FROM results r JOIN bench.targets t ON t.batch_id = r.batch_id WHERE t.n = :n ORDER BY r.id;
