-- A product's test across its batches reads the current numeric results of
-- that test. Whether a result is current is derived from other rows (a
-- replacement, a rejected review, an invalidating investigation), so reading
-- the series from `results` anti-joins every result of the test: at 1 M
-- batches the whole-history chart hashed all 10 M results. This list holds
-- exactly the current numeric results, keyed as the chart reads them, kept by
-- triggers in the transactions that write the result, the review or the
-- investigation's close (as results_awaiting_review is). It is an index of
-- the record, not a record: rows leave it when their result stops counting.
CREATE TABLE trend_points (
    result_id    uuid        PRIMARY KEY REFERENCES results (id),
    product_id   uuid        NOT NULL,
    test_code    text        NOT NULL,
    performed_at timestamptz NOT NULL,
    batch_id     uuid        NOT NULL,
    value_text   text        NOT NULL,
    outcome      text        NOT NULL
);
CREATE INDEX trend_points_series ON trend_points (product_id, test_code, performed_at, batch_id);

CREATE FUNCTION cellqc_trend_point_recorded() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.replaces_result_id IS NOT NULL THEN
        DELETE FROM trend_points WHERE result_id = NEW.replaces_result_id;
    END IF;
    IF NEW.value_numeric IS NOT NULL THEN
        INSERT INTO trend_points (result_id, product_id, test_code, performed_at, batch_id, value_text, outcome)
        SELECT NEW.id, b.product_id, NEW.test_code, NEW.performed_at, NEW.batch_id, NEW.value_text, NEW.outcome
          FROM batches b WHERE b.id = NEW.batch_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER trend_points_on_record AFTER INSERT ON results
    FOR EACH ROW EXECUTE FUNCTION cellqc_trend_point_recorded();

CREATE FUNCTION cellqc_trend_point_withdrawn() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'signatures' THEN
        DELETE FROM trend_points WHERE result_id = NEW.entity_id;
    ELSE
        DELETE FROM trend_points WHERE result_id = NEW.result_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER trend_points_on_rejected_review AFTER INSERT ON signatures
    FOR EACH ROW
    WHEN (NEW.entity_type = 'result' AND NEW.meaning = 'review_rejected')
    EXECUTE FUNCTION cellqc_trend_point_withdrawn();
CREATE TRIGGER trend_points_on_invalid AFTER UPDATE ON deviations
    FOR EACH ROW
    WHEN (NEW.conclusion = 'invalid_test' AND NEW.result_id IS NOT NULL)
    EXECUTE FUNCTION cellqc_trend_point_withdrawn();

INSERT INTO trend_points (result_id, product_id, test_code, performed_at, batch_id, value_text, outcome)
SELECT r.id, b.product_id, r.test_code, r.performed_at, r.batch_id, r.value_text, r.outcome
  FROM results r JOIN batches b ON b.id = r.batch_id
 WHERE r.value_numeric IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM results n WHERE n.replaces_result_id = r.id)
   AND NOT EXISTS (SELECT 1 FROM signatures s WHERE s.entity_id = r.id AND s.meaning = 'review_rejected')
   AND NOT EXISTS (SELECT 1 FROM deviations d WHERE d.result_id = r.id AND d.conclusion = 'invalid_test');

ANALYZE trend_points;

-- Migration 000017's index served the series' reads from results; they read
-- this list now.
DROP INDEX results_trend;

GRANT SELECT ON trend_points TO cellqc_app;
