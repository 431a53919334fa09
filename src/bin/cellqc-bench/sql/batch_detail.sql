-- pgbench: the statements GET /batches/{id} sends: the session check and
-- the batch record read (LOAD, filled in from the server's own constant).
\set n random(1, :targets)
SELECT s.*, u.* FROM sessions s JOIN users u ON u.id = s.user_id
 WHERE s.id = (SELECT id FROM sessions ORDER BY id DESC LIMIT 1);
LOAD;
