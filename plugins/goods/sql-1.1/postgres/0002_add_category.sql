-- goods 1.1.0: items get a category. Existing rows are back-filled with
-- 'general' by the install hook when upgrading from a version below 1.1.0.
ALTER TABLE {{prefix}}items ADD COLUMN category TEXT DEFAULT NULL;
