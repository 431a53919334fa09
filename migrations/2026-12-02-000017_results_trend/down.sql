DROP INDEX results_trend;
