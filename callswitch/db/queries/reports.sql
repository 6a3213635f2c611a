-- Queries behind `callswitch report` and `callswitch purge` (views and functions: migration 0010).
-- $1 since, $2 until (timestamptz, NULL: unbounded); then site, destination (NULL: all).

-- name: report_pages
SELECT * FROM cs_page_report($1, $2, $3)

-- name: report_campaigns
SELECT * FROM cs_campaign_report($1, $2, $3)

-- name: report_sites
SELECT * FROM cs_site_report($1, $2, $3)

-- name: report_destinations
SELECT * FROM cs_destination_report($1, $2, $3, $4)

-- name: report_members
SELECT * FROM cs_member_report($1, $2, $3, $4)

-- name: report_funnel
SELECT * FROM cs_funnel_report($1, $2, $3, $4)

-- name: report_heatmap
-- $4 default time zone, $5 {"site": "Area/City", ...}
-- $5 is JSON text: ::text::jsonb so that a connection with a jsonb codec (the daemon's pool) does not
-- encode it a second time into one JSON string
SELECT * FROM cs_volume_heatmap($1, $2, $3, $4, $5::text::jsonb)

-- name: report_trunks
SELECT * FROM cs_trunk_report($1, $2, $3)

-- name: report_trunk_failures
SELECT * FROM cs_trunk_failures($1, $2, $3)

-- name: purge_count
-- What a purge with cut-off $1 would anonymise.
WITH batch AS (
    SELECT id FROM callback_requests
    WHERE anonymised_at IS NULL AND finished_at IS NOT NULL AND created_at < $1
)
SELECT
    (SELECT count(*) FROM batch) AS requests,
    (SELECT count(*) FROM call_legs l JOIN batch b ON l.request_id = b.id WHERE l.leg = 'customer') AS call_legs,
    (SELECT count(*) FROM callback_events e JOIN batch b ON e.request_id = b.id
     WHERE e.detail ->> 'page_url' IS NOT NULL) AS events

-- name: purge_batch
-- Anonymise up to $2 finished requests created before $1; keep the attributes named in $3.
-- Personal data are blanked ('' where the column is NOT NULL), URLs lose query string and fragment
-- (they may carry e-mail addresses or names), attributes keep only the listed keys.
WITH batch AS (
    SELECT id FROM callback_requests
    WHERE anonymised_at IS NULL AND finished_at IS NOT NULL AND created_at < $1
    ORDER BY created_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), reqs AS (
    UPDATE callback_requests r SET
        visitor_name = '',
        phone_given = '',
        phone_e164 = '',
        client_ip = NULL,
        user_agent = NULL,
        idempotency_key = NULL,
        request_fingerprint = '',
        page_url = cs_page_key(r.page_url),
        referrer = cs_page_key(r.referrer),
        pages_visited = ARRAY(SELECT coalesce(cs_page_key(p.url), '')
                              FROM unnest(r.pages_visited) WITH ORDINALITY AS p(url, n) ORDER BY p.n),
        attributes = (SELECT coalesce(jsonb_object_agg(a.k, a.v), '{}')
                      FROM jsonb_each(r.attributes) AS a(k, v) WHERE a.k = ANY($3::text[])),
        anonymised_at = now()
    FROM batch WHERE r.id = batch.id
    RETURNING r.id
), legs AS (
    UPDATE call_legs l SET number_dialled = ''
    FROM batch WHERE l.request_id = batch.id AND l.leg = 'customer'
    RETURNING l.id
), events AS (
    UPDATE callback_events e
    SET detail = jsonb_set(e.detail, '{page_url}', to_jsonb(coalesce(cs_page_key(e.detail ->> 'page_url'), '')))
    FROM batch WHERE e.request_id = batch.id AND e.detail ->> 'page_url' IS NOT NULL
    RETURNING e.id
)
SELECT (SELECT count(*) FROM reqs) AS requests, (SELECT count(*) FROM legs) AS call_legs,
       (SELECT count(*) FROM events) AS events

-- name: purge_record_run
INSERT INTO retention_runs (older_than_days, cutoff, requests, call_legs, events, actor)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id

-- name: report_summary
-- Headline figures for the HTML report; same filters as report_funnel.
SELECT count(*) AS requests,
       count(*) FILTER (WHERE f.connected) AS connected,
       round(count(*) FILTER (WHERE f.connected)::numeric / nullif(count(*), 0), 4) AS connect_rate,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY f.speed_to_lead_s) FILTER (WHERE f.connected))::numeric, 1)
           AS median_speed_to_lead_s,
       count(*) FILTER (WHERE f.after_hours) AS after_hours,
       coalesce(sum(f.talk_seconds), 0)::bigint AS talk_seconds
FROM cs_request_funnel f
WHERE f.created_at >= coalesce($1::timestamptz, '-infinity') AND f.created_at < coalesce($2::timestamptz, 'infinity')
  AND ($3::text IS NULL OR f.site = $3) AND ($4::text IS NULL OR f.destination = $4)
