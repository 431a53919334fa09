CREATE INDEX results_trend ON results (test_code, performed_at, batch_id);
DROP TRIGGER trend_points_on_invalid ON deviations;
DROP TRIGGER trend_points_on_rejected_review ON signatures;
DROP TRIGGER trend_points_on_record ON results;
DROP FUNCTION cellqc_trend_point_withdrawn();
DROP FUNCTION cellqc_trend_point_recorded();
DROP TABLE trend_points;
