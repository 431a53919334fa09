ALTER TABLE signatures DROP CONSTRAINT signatures_entity_type_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_entity_type_check CHECK (entity_type IN (
    'result', 'specification', 'batch', 'deviation', 'qualification', 'instrument'));
ALTER TABLE signatures DROP CONSTRAINT signatures_meaning_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_meaning_check CHECK (meaning IN (
    'reviewed', 'review_rejected', 'spec_approved', 'released', 'conditionally_released',
    'rejected', 'recalled', 'deviation_closed', 'qualification_granted', 'qualification_revoked',
    'instrument_returned'));
DROP TABLE material_uses;
DROP TABLE material_lots;
DROP FUNCTION cellqc_material_lot_transition();
