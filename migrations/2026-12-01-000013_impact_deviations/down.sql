CREATE OR REPLACE FUNCTION cellqc_deviation_close_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'open' OR NEW.status <> 'closed'
       OR (NEW.id, NEW.batch_id, NEW.result_id, NEW.kind, NEW.severity, NEW.title, NEW.description,
           NEW.opened_by, NEW.opened_at)
          IS DISTINCT FROM
          (OLD.id, OLD.batch_id, OLD.result_id, OLD.kind, OLD.severity, OLD.title, OLD.description,
           OLD.opened_by, OLD.opened_at) THEN
        RAISE EXCEPTION 'cellqc: a deviation is only ever closed, once'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
ALTER TABLE deviations DROP CONSTRAINT deviations_impact_subject;
ALTER TABLE deviations DROP COLUMN result_ids, DROP COLUMN subject_id;
ALTER TABLE deviations DROP CONSTRAINT deviations_kind_check;
ALTER TABLE deviations ADD CONSTRAINT deviations_kind_check CHECK (kind IN ('oos', 'excursion', 'manual'));
