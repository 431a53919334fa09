-- The batch list's search box: a case-insensitive batch-number prefix. An
-- expression index on lower(batch_number) with text_pattern_ops serves
-- `lower(batch_number) LIKE 'prefix%'` in any collation, so the search stays an
-- index scan at a million batches.
CREATE INDEX batches_number_search ON batches (lower(batch_number) text_pattern_ops);
