ALTER TABLE email_outbox DROP COLUMN link_path; DROP INDEX email_outbox_due;
