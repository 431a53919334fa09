-- The reader's language: pages, emails and the certificate follow it.
ALTER TABLE users
    ADD COLUMN locale text NOT NULL DEFAULT 'en'
        CONSTRAINT users_locale_known CHECK (locale IN ('en', 'zh-CN'));

-- What the signer read when signing: the statement of the meaning in the
-- signer's language (the meaning itself stays the stored code). Signatures
-- made before statements were kept have neither: every page was English
-- then, and the meaning's English statement is what was shown.
ALTER TABLE signatures
    ADD COLUMN statement text,
    ADD COLUMN statement_locale text
        CONSTRAINT signatures_statement_locale_known CHECK (statement_locale IN ('en', 'zh-CN')),
    ADD CONSTRAINT signatures_statement_with_locale
        CHECK ((statement IS NULL) = (statement_locale IS NULL));
