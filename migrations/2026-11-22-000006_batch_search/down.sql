DROP INDEX batches_number_search;
