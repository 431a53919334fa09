ALTER TABLE signatures DROP CONSTRAINT signatures_entity_type_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_entity_type_check CHECK (entity_type IN (
    'result', 'specification', 'batch', 'deviation', 'qualification'));
ALTER TABLE signatures DROP CONSTRAINT signatures_meaning_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_meaning_check CHECK (meaning IN (
    'reviewed', 'review_rejected', 'spec_approved', 'released', 'conditionally_released',
    'rejected', 'recalled', 'deviation_closed', 'qualification_granted', 'qualification_revoked'));
DROP INDEX results_instrument;
ALTER TABLE results DROP COLUMN instrument_id;
DROP TABLE instrument_events;
DROP TABLE instruments;
