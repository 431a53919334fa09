-- The decided record is closed (API v1.2): after release a result is
-- corrected only under a post-release correction, a deviation QA opens with
-- a signature (`correction_opened`) naming the result (subject_id), and
-- closes with a signature concluding whether the batch still meets its
-- specification.
ALTER TABLE deviations DROP CONSTRAINT deviations_kind_check;
ALTER TABLE deviations ADD CONSTRAINT deviations_kind_check
    CHECK (kind IN ('oos', 'excursion', 'manual', 'instrument', 'material', 'post_release_correction'));
ALTER TABLE deviations DROP CONSTRAINT deviations_impact_subject;
ALTER TABLE deviations ADD CONSTRAINT deviations_impact_subject
    CHECK ((kind IN ('instrument', 'material', 'post_release_correction')) = (subject_id IS NOT NULL));
ALTER TABLE deviations DROP CONSTRAINT deviations_conclusion_check;
ALTER TABLE deviations ADD CONSTRAINT deviations_conclusion_check
    CHECK (conclusion IN ('invalid_test', 'confirmed_oos', 'no_impact',
                          'meets_specification', 'does_not_meet_specification'));
-- A correction is concluded as one, and only a correction is.
ALTER TABLE deviations ADD CONSTRAINT deviations_correction_conclusion
    CHECK (conclusion IS NULL
           OR (kind = 'post_release_correction')
              = (conclusion IN ('meets_specification', 'does_not_meet_specification')));

ALTER TABLE signatures DROP CONSTRAINT signatures_meaning_check;
ALTER TABLE signatures ADD CONSTRAINT signatures_meaning_check CHECK (meaning IN (
    'reviewed', 'review_rejected', 'spec_approved', 'released', 'conditionally_released',
    'rejected', 'recalled', 'deviation_closed', 'qualification_granted', 'qualification_revoked',
    'instrument_returned', 'material_released', 'material_rejected', 'audit_trail_reviewed',
    'correction_opened'));

-- A correction is opened with QA's signature, in the same transaction.
CREATE FUNCTION cellqc_correction_opened_signed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.kind = 'post_release_correction'
       AND NOT cellqc_signed_now('deviation', NEW.id, ARRAY['correction_opened']) THEN
        RAISE EXCEPTION 'cellqc: correction % was opened without its correction_opened signature in the same transaction',
            NEW.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER deviations_correction_signed AFTER INSERT ON deviations
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION cellqc_correction_opened_signed();
