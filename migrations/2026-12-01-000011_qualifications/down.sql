ALTER TABLE signatures DROP CONSTRAINT signatures_entity_type_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_entity_type_check CHECK (entity_type IN (
    'result', 'specification', 'batch', 'deviation'));
ALTER TABLE signatures DROP CONSTRAINT signatures_meaning_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_meaning_check CHECK (meaning IN ('reviewed',
    'review_rejected', 'spec_approved', 'released', 'conditionally_released', 'rejected',
    'recalled', 'deviation_closed'));
DROP TABLE qualifications;
DROP FUNCTION cellqc_qualification_revoke_once();
ALTER TABLE spec_tests DROP COLUMN instrument_kind, DROP COLUMN qualification_required;
