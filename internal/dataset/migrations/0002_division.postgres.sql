-- Row scopes (a county consumer sees its county) read only the rows of their division:
-- dataset_rows.division holds each row's value of the schema's division column
-- (Schema.DivisionColumn: the named one, else the first non-sensitive column of type
-- division) and an index serves "division within a GB/T 2260 code" as a range of code
-- prefixes, in (division, row_no) order. Rows already stored are filled from their JSON here.
-- The one dialect difference is the JSON functions; SQLite's twin is 0002_division.sqlite.sql.

ALTER TABLE dataset_rows ADD COLUMN division TEXT;

UPDATE dataset_rows AS r SET division = r.data::jsonb ->> d.name
FROM (SELECT v.dataset_id, v.version,
		(SELECT c.col ->> 'name' FROM jsonb_array_elements(v.schema_json::jsonb -> 'columns') WITH ORDINALITY AS c(col, n)
			WHERE c.col ->> 'type' = 'division' AND COALESCE((c.col ->> 'sensitive')::boolean, FALSE) = FALSE
			ORDER BY c.n LIMIT 1) AS name
	FROM dataset_versions AS v) AS d
WHERE r.dataset_id = d.dataset_id AND r.version = d.version AND d.name IS NOT NULL;

CREATE INDEX dataset_rows_division ON dataset_rows (dataset_id, version, division, row_no);
