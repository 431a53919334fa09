ALTER TABLE signatures
    DROP CONSTRAINT signatures_statement_with_locale,
    DROP COLUMN statement_locale,
    DROP COLUMN statement;
ALTER TABLE users DROP COLUMN locale;
