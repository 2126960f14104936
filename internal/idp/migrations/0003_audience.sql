-- Who signs in to an application: citizens and enterprises at the portal, or staff (公务人员)
-- at the console. The login page sends the browser to the right one.
ALTER TABLE idp_clients ADD COLUMN audience TEXT NOT NULL DEFAULT 'citizen';
