-- The CSRF token of a browser session: every form posts it back.
ALTER TABLE sessions ADD COLUMN csrf_token text;
