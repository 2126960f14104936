-- Row scopes (a county consumer sees its county) read only the rows of their division:
-- dataset_rows.division holds each row's value of the schema's division column
-- (Schema.DivisionColumn: the named one, else the first non-sensitive column of type
-- division) and an index serves "division within a GB/T 2260 code" as a range of code
-- prefixes, in (division, row_no) order. Rows already stored are filled from their JSON here.
-- The one dialect difference is the JSON functions; PostgreSQL's twin is 0002_division.postgres.sql.

ALTER TABLE dataset_rows ADD COLUMN division TEXT;

UPDATE dataset_rows SET division = json_extract(dataset_rows.data, '$."' || d.name || '"')
FROM (SELECT v.dataset_id, v.version,
		(SELECT json_extract(c.value, '$.name') FROM json_each(v.schema_json, '$.columns') AS c
			WHERE json_extract(c.value, '$.type') = 'division' AND COALESCE(json_extract(c.value, '$.sensitive'), 0) = 0
			ORDER BY c.key LIMIT 1) AS name
	FROM dataset_versions AS v) AS d
WHERE dataset_rows.dataset_id = d.dataset_id AND dataset_rows.version = d.version AND d.name IS NOT NULL;

CREATE INDEX dataset_rows_division ON dataset_rows (dataset_id, version, division, row_no);
