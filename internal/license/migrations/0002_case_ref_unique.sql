-- A service case issues its licence once: a second delivery of the closing event that races
-- the first cannot issue a twin. Renewals and changes carry the case on (previous_id set).
CREATE UNIQUE INDEX licenses_case_ref ON licenses (issuer_dept_id, case_ref) WHERE case_ref <> '' AND previous_id = '';
