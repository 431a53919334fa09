DROP TABLE audit_reviews;
ALTER TABLE signatures DROP CONSTRAINT signatures_meaning_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_meaning_check CHECK (meaning IN (
    'reviewed', 'review_rejected', 'spec_approved', 'released', 'conditionally_released',
    'rejected', 'recalled', 'deviation_closed', 'qualification_granted', 'qualification_revoked',
    'instrument_returned', 'material_released', 'material_rejected'));
ALTER TABLE products DROP COLUMN audit_review_required;
