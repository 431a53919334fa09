DROP TABLE import_mappings;
ALTER TABLE results DROP COLUMN source_file_id;
DROP TABLE source_files;
