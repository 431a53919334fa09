-- A password set by someone else (an admin creating the account or resetting
-- it) is temporary: its holder can sign in and read, but signs nothing until
-- they have chosen their own (21 CFR 11.300: a signature is the signer's alone).
ALTER TABLE users ADD COLUMN password_temporary boolean NOT NULL DEFAULT false;
