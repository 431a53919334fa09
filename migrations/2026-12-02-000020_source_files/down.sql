DROP TABLE import_mappings;
DROP FUNCTION cellqc_import_mapping_change();
ALTER TABLE results DROP COLUMN source_file_id;
DROP TABLE source_files;
