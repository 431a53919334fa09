ALTER TABLE sessions DROP COLUMN csrf_token;
