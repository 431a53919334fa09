-- The page an email points to, rendered against CELLQC_PUBLIC_URL at sending.
ALTER TABLE email_outbox ADD COLUMN link_path text;
CREATE INDEX email_outbox_due ON email_outbox (urgent DESC, next_attempt_at) WHERE sent_at IS NULL;
