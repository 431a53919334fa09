-- pgbench: the selects of GET /batches/{id} (with the session check).
\set n random(1, :targets)
SELECT s.id, u.id FROM sessions s JOIN users u ON u.id = s.user_id ORDER BY s.id LIMIT 1;
SELECT b.* FROM batches b JOIN bench.targets t ON t.batch_id = b.id WHERE t.n = :n;
SELECT p.parent_id FROM batch_parents p JOIN bench.targets t ON t.batch_id = p.batch_id WHERE t.n = :n;
SELECT r.* FROM results r JOIN bench.targets t ON t.batch_id = r.batch_id WHERE t.n = :n ORDER BY r.id;
SELECT s.* FROM signatures s WHERE s.entity_type = 'result' AND s.entity_id IN
  (SELECT r.id FROM results r JOIN bench.targets t ON t.batch_id = r.batch_id WHERE t.n = :n);
SELECT d.result_id FROM deviations d JOIN bench.targets t ON t.batch_id = d.batch_id WHERE t.n = :n AND d.conclusion = 'invalid_test';
SELECT u.* FROM users u WHERE u.id IN (SELECT r.performed_by FROM results r JOIN bench.targets t ON t.batch_id = r.batch_id WHERE t.n = :n);
SELECT s.* FROM signatures s JOIN bench.targets t ON s.entity_id = t.batch_id WHERE t.n = :n;
SELECT d.* FROM deviations d JOIN bench.targets t ON t.batch_id = d.batch_id WHERE t.n = :n ORDER BY d.id;
SELECT c.* FROM custody_events c JOIN bench.targets t ON t.batch_id = c.batch_id WHERE t.n = :n ORDER BY c.seq;
