-- Signatures are looked up by the record they sign (a batch's result reviews,
-- a batch's release signatures) without knowing its kind first: an index led
-- by entity_id serves both, and replaces (entity_type, entity_id, id).
CREATE INDEX signatures_entity_id ON signatures (entity_id, id);
DROP INDEX signatures_entity;

-- The reviewers' work list: every result that has no review signature, is not
-- replaced and was not invalidated. Results are immutable and their status is
-- derived from other rows, so finding these by scanning results grows with
-- the whole history; this list stays as small as the work still to do. It is
-- kept by triggers, in the transaction that writes the result, the review or
-- the deviation's close, so it cannot drift from the facts. It is an index of
-- work, not a record: rows leave it when the work is done.
CREATE TABLE results_awaiting_review (
    result_id    uuid PRIMARY KEY REFERENCES results (id),
    batch_id     uuid NOT NULL REFERENCES batches (id),
    performed_by uuid NOT NULL REFERENCES users (id)
);

CREATE FUNCTION cellqc_result_awaits_review() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO results_awaiting_review (result_id, batch_id, performed_by)
        VALUES (NEW.id, NEW.batch_id, NEW.performed_by);
    IF NEW.replaces_result_id IS NOT NULL THEN
        DELETE FROM results_awaiting_review WHERE result_id = NEW.replaces_result_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER results_awaiting_review_on_record AFTER INSERT ON results
    FOR EACH ROW EXECUTE FUNCTION cellqc_result_awaits_review();

CREATE FUNCTION cellqc_result_reviewed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM results_awaiting_review WHERE result_id = NEW.entity_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER results_awaiting_review_on_review AFTER INSERT ON signatures
    FOR EACH ROW
    WHEN (NEW.entity_type = 'result' AND NEW.meaning IN ('reviewed', 'review_rejected'))
    EXECUTE FUNCTION cellqc_result_reviewed();

CREATE FUNCTION cellqc_result_invalidated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM results_awaiting_review WHERE result_id = NEW.result_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER results_awaiting_review_on_invalid AFTER UPDATE ON deviations
    FOR EACH ROW
    WHEN (NEW.conclusion = 'invalid_test' AND NEW.result_id IS NOT NULL)
    EXECUTE FUNCTION cellqc_result_invalidated();

INSERT INTO results_awaiting_review (result_id, batch_id, performed_by)
SELECT r.id, r.batch_id, r.performed_by FROM results r
 WHERE NOT EXISTS (SELECT 1 FROM signatures s WHERE s.entity_id = r.id
                   AND s.meaning IN ('reviewed', 'review_rejected'))
   AND NOT EXISTS (SELECT 1 FROM results n WHERE n.replaces_result_id = r.id)
   AND NOT EXISTS (SELECT 1 FROM deviations d WHERE d.result_id = r.id
                   AND d.conclusion = 'invalid_test');
