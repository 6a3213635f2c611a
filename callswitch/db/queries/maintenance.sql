-- name: tables_to_analyze
-- Of the given tables, the small ones (fewer than $3 rows as the planner last knew them) changed enough since
-- their last ANALYZE to need another by autovacuum's own default rule (50 rows plus 10 %, $2 = 50): ANALYZE
-- them now rather than at autovacuum's next visit, up to a minute later.
SELECT s.relname::text AS name
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = current_schema() AND s.relname = ANY($1::text[])
  AND greatest(c.reltuples, 0) < $3
  AND s.n_mod_since_analyze >= $2 + 0.1 * greatest(c.reltuples, 0)
ORDER BY s.relname
