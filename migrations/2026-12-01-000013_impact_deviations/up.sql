-- Impact assessment: a failed calibration (and, to come, a rejected material
-- lot) opens a deviation on every batch whose current results it may have
-- touched. The deviation names what failed (subject_id) and the results.
ALTER TABLE deviations DROP CONSTRAINT deviations_kind_check;
ALTER TABLE deviations ADD CONSTRAINT deviations_kind_check
    CHECK (kind IN ('oos', 'excursion', 'manual', 'instrument', 'material'));
ALTER TABLE deviations
    ADD COLUMN subject_id uuid,
    ADD COLUMN result_ids uuid[];
ALTER TABLE deviations ADD CONSTRAINT deviations_impact_subject
    CHECK ((kind IN ('instrument', 'material')) = (subject_id IS NOT NULL));

-- A deviation is closed once; what was opened is never edited (now with the
-- impact columns too).
CREATE OR REPLACE FUNCTION cellqc_deviation_close_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'open' OR NEW.status <> 'closed'
       OR (NEW.id, NEW.batch_id, NEW.result_id, NEW.kind, NEW.severity, NEW.title, NEW.description,
           NEW.opened_by, NEW.opened_at, NEW.subject_id, NEW.result_ids)
          IS DISTINCT FROM
          (OLD.id, OLD.batch_id, OLD.result_id, OLD.kind, OLD.severity, OLD.title, OLD.description,
           OLD.opened_by, OLD.opened_at, OLD.subject_id, OLD.result_ids) THEN
        RAISE EXCEPTION 'cellqc: a deviation is only ever closed, once'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
