DROP TRIGGER deviations_correction_signed ON deviations;
DROP FUNCTION cellqc_correction_opened_signed();
ALTER TABLE signatures DROP CONSTRAINT signatures_meaning_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_meaning_check CHECK (meaning IN (
    'reviewed', 'review_rejected', 'spec_approved', 'released', 'conditionally_released',
    'rejected', 'recalled', 'deviation_closed', 'qualification_granted', 'qualification_revoked',
    'instrument_returned', 'material_released', 'material_rejected', 'audit_trail_reviewed'));
ALTER TABLE deviations DROP CONSTRAINT deviations_correction_conclusion;
ALTER TABLE deviations DROP CONSTRAINT deviations_conclusion_check;
ALTER TABLE deviations ADD CONSTRAINT deviations_conclusion_check
    CHECK (conclusion IN ('invalid_test', 'confirmed_oos', 'no_impact'));
ALTER TABLE deviations DROP CONSTRAINT deviations_impact_subject;
ALTER TABLE deviations ADD CONSTRAINT deviations_impact_subject
    CHECK ((kind IN ('instrument', 'material')) = (subject_id IS NOT NULL));
ALTER TABLE deviations DROP CONSTRAINT deviations_kind_check;
ALTER TABLE deviations ADD CONSTRAINT deviations_kind_check
    CHECK (kind IN ('oos', 'excursion', 'manual', 'instrument', 'material'));
