DROP TABLE email_outbox;
DROP TABLE audit_entries;
DROP TABLE audit_chain_heads;
DROP TABLE sessions;
DROP TABLE users;
DROP FUNCTION cellqc_username_immutable();
DROP FUNCTION cellqc_refuse_change();
