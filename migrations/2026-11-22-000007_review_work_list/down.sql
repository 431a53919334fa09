DROP TRIGGER results_awaiting_review_on_invalid ON deviations;
DROP FUNCTION cellqc_result_invalidated();
DROP TRIGGER results_awaiting_review_on_review ON signatures;
DROP FUNCTION cellqc_result_reviewed();
DROP TRIGGER results_awaiting_review_on_record ON results;
DROP FUNCTION cellqc_result_awaits_review();
DROP TABLE results_awaiting_review;
CREATE INDEX signatures_entity ON signatures (entity_type, entity_id, id);
DROP INDEX signatures_entity_id;
