-- Uploaded materials are SM4-encrypted at rest (apply_files_seal.go): data_key is the file's
-- own SM4 key, sealed by the field cipher. NULL marks a file stored in clear before this
-- migration; it still opens as it is.

ALTER TABLE applicant_files ADD COLUMN data_key {{BLOB}};
