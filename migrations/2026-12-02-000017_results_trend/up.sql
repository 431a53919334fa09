-- Trends (continued process verification): a product's test across its
-- batches in performed_at order. The chart reads one test's results in that
-- order; release readiness reads a batch's point's neighbourhood (the first
-- 20 points, the 8 before it) for each of its numeric tests.
CREATE INDEX results_trend ON results (test_code, performed_at, batch_id);
