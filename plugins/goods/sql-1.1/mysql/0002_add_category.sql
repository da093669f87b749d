-- goods 1.1.0: items get a category. Existing rows are back-filled with
-- 'general' by the install hook when upgrading from a version below 1.1.0.
-- VARCHAR, not TEXT: MySQL TEXT columns reach sqlx Any as blobs.
ALTER TABLE {{prefix}}items ADD COLUMN category VARCHAR(255) DEFAULT NULL;
