-- A year of web-callback traffic for a large franchise, generated set-based (bench/report_scale.py).
--
-- Creates the schema bench_seed: the franchise (sites with time zones, ~200 stores, ~2,000 members, ~5,000
-- pages, campaigns, trunks) and bench_seed.seed_batch(), which writes the callback_requests, callback_events
-- and call_legs of the requests created on a range of local calendar days, in time order, the way intake and
-- the dialer would have written them (heap order = time order, ids ascending with time). report_scale.py calls
-- seed_batch once per month and drops the schema afterwards. The production tables and indexes are used as
-- they are (no unlogged tables, no index rebuilds); the caller sets session_replication_role = replica so
-- that the notification-outbox trigger (operational, purged in production) and FK checks are skipped.
--
-- Shapes (per request): 2 % rejected at intake, 0.6 % expired, 1.4 % cancelled before dialling; the rest
-- dialled. Opening hours Mon-Sat 08:00-20:00 in the site's zone: requests outside are scheduled for the next
-- opening (after hours), 3 % of the others for the visitor's preferred time. Up to 3 attempts (a retry
-- 10 minutes after a busy / unanswered visitor). Stores hunt their members one by one (1-3 legs) or ring all
-- (3-4 legs at once, one winner, the others answered_elsewhere). Final outcome: connected ~70 %, no_agent,
-- agent_declined, customer busy / no answer / unreachable, cancelled while ringing. Agent legs go out on the
-- site's carrier trunk or to internal PJSIP endpoints (no trunk); visitor legs on the carrier or a backup
-- trunk; failures carry Q.850 causes (34 congestion, 3/1 unreachable, 38/41 failed). Requests older than
-- 180 days at the end of the year are anonymised (callswitch purge).

DROP SCHEMA IF EXISTS bench_seed CASCADE;
CREATE SCHEMA bench_seed;

CREATE TABLE bench_seed.sites (
    site text PRIMARY KEY, tz text NOT NULL, cc text NOT NULL, carrier text NOT NULL, host text NOT NULL,
    weight float8 NOT NULL, lo float8, hi float8, n_stores int, store_base int, n_pages int, page_base int
);
INSERT INTO bench_seed.sites (site, tz, cc, carrier, host, weight) VALUES
    ('shop-de', 'Europe/Berlin', '49', 'carrier-eu', 'www.example.de', 0.28),
    ('shop-at', 'Europe/Vienna', '43', 'carrier-eu', 'www.example.at', 0.06),
    ('shop-ch', 'Europe/Zurich', '41', 'carrier-eu', 'www.example.ch', 0.06),
    ('shop-uk', 'Europe/London', '44', 'carrier-uk', 'www.example.co.uk', 0.14),
    ('shop-fr', 'Europe/Paris', '33', 'carrier-eu', 'www.example.fr', 0.10),
    ('shop-us-east', 'America/New_York', '1', 'carrier-us', 'www.example.com', 0.18),
    ('shop-us-west', 'America/Los_Angeles', '1', 'carrier-us', 'west.example.com', 0.10),
    ('shop-au', 'Australia/Sydney', '61', 'carrier-au', 'www.example.com.au', 0.08);

UPDATE bench_seed.sites s SET lo = x.lo, hi = x.hi, n_stores = x.n_stores, store_base = x.store_base,
                              n_pages = x.n_pages, page_base = x.page_base
FROM (
    SELECT site,
           coalesce(sum(weight) OVER w_before, 0) AS lo,
           CASE WHEN row_number() OVER w = count(*) OVER () THEN 1.0 ELSE sum(weight) OVER w END AS hi,
           round(200 * weight)::int AS n_stores,
           coalesce(sum(round(200 * weight)) OVER w_before, 0)::int AS store_base,
           round(5000 * weight)::int AS n_pages,
           coalesce(sum(round(5000 * weight)) OVER w_before, 0)::int AS page_base
    FROM bench_seed.sites
    WINDOW w AS (ORDER BY site ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
           w_before AS (ORDER BY site ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
) x
WHERE x.site = s.site;

-- Stores (routing destinations): one in eight rings all its members at once, the others hunt.
CREATE TABLE bench_seed.stores AS
SELECT s.store_base + j AS store, s.site, s.carrier,
       format('%s-store-%s', substr(s.site, 6), lpad(j::text, 3, '0')) AS destination,
       CASE WHEN (s.store_base + j) % 8 = 0 THEN 'ringall' ELSE 'hunt' END AS strategy,
       6 + ((s.store_base + j) * 7) % 9 AS n_members,
       least(6 + ((s.store_base + j) * 7) % 9, 3 + (s.store_base + j) % 2) AS ring_width,
       CASE WHEN s.carrier = 'carrier-eu' AND (s.store_base + j) % 3 = 0 THEN 'carrier-eu2' ELSE s.carrier END
           AS trunk
FROM bench_seed.sites s CROSS JOIN LATERAL generate_series(1, s.n_stores) j;
CREATE UNIQUE INDEX ON bench_seed.stores (store);

-- Members: phones on the carrier trunk, one in five an internal endpoint (no trunk).
CREATE TABLE bench_seed.members AS
SELECT st.store, j AS ordinal,
       CASE WHEN (st.store + j) % 5 = 0 THEN 'PJSIP/' || (1000 + st.store * 20 + j)
            ELSE '+' || s.cc || (300000000 + st.store * 1000 + j)::text END AS member,
       CASE WHEN (st.store + j) % 5 = 0 THEN NULL ELSE st.trunk END AS trunk
FROM bench_seed.stores st JOIN bench_seed.sites s USING (site)
CROSS JOIN LATERAL generate_series(1, st.n_members) j;
CREATE UNIQUE INDEX ON bench_seed.members (store, ordinal);

CREATE TABLE bench_seed.pages AS
SELECT s.page_base + j AS page, s.site,
       format('https://%s/%s/%s-%s', s.host,
              (ARRAY['products', 'pricing', 'contact', 'stores', 'blog', 'support', 'offers'])[1 + j % 7],
              (ARRAY['widget', 'gadget', 'service', 'plan', 'guide', 'store', 'deal'])[1 + (j / 7) % 7], j) AS url
FROM bench_seed.sites s CROSS JOIN LATERAL generate_series(1, s.n_pages) j;
CREATE UNIQUE INDEX ON bench_seed.pages (page);

-- Secondary indexes of the tables written are dropped for the load and built afterwards (report_scale.py);
-- the primary keys stay. saved_indexes keeps their definitions.
CREATE TABLE bench_seed.saved_indexes (name text PRIMARY KEY, tbl text NOT NULL, def text NOT NULL);

CREATE FUNCTION bench_seed.drop_secondary_indexes() RETURNS SETOF bench_seed.saved_indexes
LANGUAGE plpgsql AS $fn$
DECLARE
    ix record;
BEGIN
    FOR ix IN
        SELECT i.indexrelid::regclass::text AS name, i.indrelid::regclass::text AS tbl,
               pg_get_indexdef(i.indexrelid) AS def
        FROM pg_index i
        WHERE i.indrelid IN ('callback_requests'::regclass, 'callback_events'::regclass, 'call_legs'::regclass)
          AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
    LOOP
        INSERT INTO bench_seed.saved_indexes VALUES (ix.name, ix.tbl, ix.def);
        EXECUTE format('DROP INDEX %s', ix.name);
    END LOOP;
    RETURN QUERY SELECT * FROM bench_seed.saved_indexes ORDER BY tbl, name;
END;
$fn$;

CREATE TABLE bench_seed.causes (cause int PRIMARY KEY, text text NOT NULL);
INSERT INTO bench_seed.causes VALUES
    (1, 'Unallocated (unassigned) number'), (3, 'No route to destination'), (16, 'Normal Clearing'),
    (17, 'User busy'), (19, 'No user responding'), (26, 'Answered elsewhere'),
    (34, 'Circuit/channel congestion'), (38, 'Network out of order'), (41, 'Temporary failure');


-- The requests created on local days [p_day0, p_day0 + p_days) of each site, with their events and legs.
-- p_n0: sequence number of the first request (phone numbers are unique per request); p_now: the end of the
-- recorded history (later work is still pending); p_anonymise_before: requests created earlier were purged.
CREATE FUNCTION bench_seed.seed_batch(p_batch int, p_day0 date, p_days int, p_requests int, p_n0 bigint,
                                      p_now timestamptz, p_anonymise_before timestamptz)
RETURNS TABLE (requests bigint, events bigint, legs bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    n_req bigint;
    n_ev bigint;
    n_leg bigint;
BEGIN
    PERFORM setseed(((p_batch * 7919) % 2000) / 1000.0 - 1.0);

    -- ------------------------------------------------------------------ one row per request
    CREATE TEMP TABLE pr ON COMMIT DROP AS
    WITH g AS (
        SELECT p_n0 + i AS n, random() AS u_site, random() AS u_store, random() AS u_page, random() AS u_camp,
               random() AS u_d1, random() AS u_d2, random() AS u_tk, random() AS u_t1, random() AS u_t2,
               random() AS u_kind, random() AS u_att, random() AS u_fin, random() AS u_pref, random() AS u_wait,
               random() AS u_misc
        FROM generate_series(1, p_requests) i
    ), d AS (
        SELECT g.*, s.site, s.tz, s.cc, s.carrier, s.host,
               s.store_base + 1 + least(s.n_stores - 1, floor(s.n_stores * power(g.u_store, 1.3))::int) AS store,
               s.page_base + 1 + least(s.n_pages - 1, floor(s.n_pages * power(g.u_page, 2.5))::int) AS page,
               CASE WHEN extract(isodow FROM p_day0 + floor(p_days * g.u_d1)::int) IN (6, 7)
                    THEN p_day0 + floor(p_days * g.u_d2)::int ELSE p_day0 + floor(p_days * g.u_d1)::int END AS day,
               CASE WHEN g.u_tk < 0.86 THEN 28800 + 43200 * (g.u_t1 + g.u_t2) / 2 ELSE 86400 * g.u_t1 END AS secs
        FROM g JOIN bench_seed.sites s ON g.u_site >= s.lo AND g.u_site < s.hi
    ), t AS (
        SELECT d.*,
               (d.day + d.secs * interval '1 second') AT TIME ZONE d.tz AS created_at,
               extract(isodow FROM d.day)::int AS dow,
               CASE WHEN d.u_kind < 0.02 THEN 'rejected' WHEN d.u_kind < 0.026 THEN 'expired'
                    WHEN d.u_kind < 0.04 THEN 'cancelled' ELSE 'dialled' END AS kind,
               CASE WHEN d.u_camp < 0.45
                    THEN (ARRAY['spring-sale', 'summer-sale', 'autumn-sale', 'winter-sale', 'brand', 'retarget',
                                'newsletter', 'webinar', 'partner', 'search'])[1 + floor(d.u_camp * 1000)::int % 10]
                         || '-' || (1 + floor(6 * power(d.u_camp / 0.45, 2))::int)
               END AS campaign
        FROM d
    ), h AS (
        SELECT t.*,
               (t.dow <> 7 AND t.secs >= 28800 AND t.secs < 72000) AS open,
               CASE WHEN t.dow <> 7 AND t.secs < 28800 THEN t.day + interval '8 hours'
                    WHEN t.dow = 6 THEN t.day + 2 + interval '8 hours'
                    ELSE t.day + 1 + interval '8 hours' END AT TIME ZONE t.tz AS next_open
        FROM t
    ), s AS (
        SELECT h.*,
               CASE WHEN h.kind = 'rejected' THEN 'rejected'
                    WHEN NOT h.open OR (h.kind = 'dialled' AND h.u_pref < 0.03) THEN 'scheduled'
                    ELSE 'queued' END AS first_state,
               CASE WHEN h.kind = 'dialled' AND h.open AND h.u_pref < 0.03
                    THEN date_trunc('hour', h.created_at) + interval '2 hours' END AS preferred_at,
               CASE WHEN h.kind = 'rejected' THEN h.created_at
                    WHEN NOT h.open THEN h.next_open
                    WHEN h.kind = 'dialled' AND h.u_pref < 0.03 THEN date_trunc('hour', h.created_at) + interval '2 hours'
                    ELSE h.created_at END AS due_at
        FROM h
    )
    SELECT s.n, gen_random_uuid() AS id, s.site, s.tz, s.cc, s.carrier, s.host, s.store, st.destination,
           st.strategy, st.n_members, st.ring_width, p.url AS page, s.campaign, s.created_at, s.first_state,
           s.preferred_at, s.due_at, s.kind, s.u_misc,
           -- still waiting (or being dialled) when the history ends
           (s.kind <> 'rejected' AND s.due_at >= p_now - interval '5 minutes') AS active,
           CASE WHEN s.u_att < 0.92 THEN 1 WHEN s.u_att < 0.985 THEN 2 ELSE 3 END AS n_att,
           CASE WHEN s.u_fin < 0.70 THEN 'connected' WHEN s.u_fin < 0.83 THEN 'no_agent'
                WHEN s.u_fin < 0.86 THEN 'agent_declined' WHEN s.u_fin < 0.90 THEN 'customer_busy'
                WHEN s.u_fin < 0.96 THEN 'customer_no_answer' WHEN s.u_fin < 0.98 THEN 'customer_unreachable'
                ELSE 'cancelled' END AS final,
           -- the first attempt: a few seconds after intake, or the morning queue after a deferral
           s.due_at + CASE WHEN s.first_state = 'scheduled' THEN 1 + 900 * s.u_wait ELSE 1 + 3 * s.u_wait END
               * interval '1 second' AS start1,
           '+' || s.cc || '17' || lpad(s.n::text, 9, '0') AS phone,
           (s.created_at < p_anonymise_before) AS anonymised
    FROM s
    JOIN bench_seed.stores st ON st.store = s.store
    JOIN bench_seed.pages p ON p.page = s.page;

    -- ------------------------------------------------------------------ one row per dialling attempt
    CREATE TEMP TABLE pa ON COMMIT DROP AS
    WITH a AS (
        SELECT r.id, r.n, k AS attempt, k = r.n_att AS last, r.final, r.destination, r.store, r.strategy,
               r.n_members, r.ring_width, r.carrier, r.phone, r.anonymised, r.first_state,
               r.start1 + (k - 1) * interval '720 seconds' AS t0,
               CASE WHEN k < r.n_att THEN 'accepted' WHEN r.final = 'no_agent' THEN 'missed'
                    WHEN r.final = 'agent_declined' THEN 'declined' WHEN r.final = 'cancelled' THEN 'cancelled'
                    ELSE 'accepted' END AS agent_result,
               CASE WHEN k < r.n_att THEN CASE WHEN random() < 0.4 THEN 'busy' ELSE 'no_answer' END
                    WHEN r.final = 'connected' THEN 'answered' WHEN r.final = 'customer_busy' THEN 'busy'
                    WHEN r.final = 'customer_no_answer' THEN 'no_answer'
                    WHEN r.final = 'customer_unreachable' THEN 'unreachable' END AS customer_result,
               random() AS u_len, random() AS u_off, random() AS u_win, random() AS u_trunk,
               3 + 22 * random() AS ta, 2 + 6 * random() AS tacc, 4 + 16 * random() AS tca,
               20 + least(3600, -240 * ln(1 - random())) AS talk
        FROM pr r CROSS JOIN LATERAL generate_series(1, r.n_att) k
        WHERE r.kind = 'dialled' AND NOT r.active
    ), l AS (
        SELECT a.*,
               CASE WHEN a.strategy = 'ringall' THEN a.ring_width
                    WHEN a.agent_result = 'accepted' THEN 1 + (a.u_len < 0.12)::int + (a.u_len < 0.03)::int
                    WHEN a.agent_result = 'declined' THEN 1 + (a.u_len < 0.3)::int
                    WHEN a.agent_result = 'missed' THEN least(a.n_members, 2 + (a.u_len < 0.2)::int)
                    ELSE 1 END AS n_legs
        FROM a
    ), w AS (
        SELECT l.*, l.t0 + interval '1 second' AS t_first,
               l.t0 + interval '1 second'
                   + CASE WHEN l.strategy = 'ringall' THEN 0 ELSE (l.n_legs - 1) * 21 END * interval '1 second'
                   AS t_last,
               CASE WHEN l.strategy = 'ringall' THEN 1 + floor(l.u_win * l.n_legs)::int ELSE l.n_legs END AS winner
        FROM l
    ), c AS (
        SELECT w.*,
               CASE WHEN w.agent_result IN ('accepted', 'declined') THEN w.t_last + w.ta * interval '1 second' END
                   AS t_ans,
               CASE WHEN w.agent_result = 'accepted' THEN w.t_last + (w.ta + w.tacc) * interval '1 second' END
                   AS t_acc
        FROM w
    ), e AS (
        SELECT c.*,
               c.t_acc + interval '1 second' AS c_orig,
               CASE WHEN c.customer_result = 'answered' THEN c.t_acc + (1 + c.tca) * interval '1 second' END AS c_ans,
               c.t_acc + CASE c.customer_result WHEN 'answered' THEN 1 + c.tca + c.talk WHEN 'busy' THEN 4
                              WHEN 'no_answer' THEN 31 WHEN 'unreachable' THEN 2 END * interval '1 second' AS c_end
        FROM c
    )
    SELECT e.*,
           CASE e.agent_result
               WHEN 'accepted' THEN e.c_end + CASE WHEN e.customer_result = 'answered' THEN 0 ELSE 2 END
                                              * interval '1 second'
               WHEN 'declined' THEN e.t_ans + interval '4 seconds'
               WHEN 'missed' THEN e.t_last + interval '20 seconds'
               ELSE e.t_first + (5 + 10 * e.u_win) * interval '1 second' END AS t_end
    FROM e;

    -- ------------------------------------------------------------------ one row per leg
    CREATE TEMP TABLE pl ON COMMIT DROP AS
    WITH ag0 AS (
        SELECT a.id, a.n, a.attempt, a.destination, a.agent_result, a.strategy, a.n_legs, a.winner, j,
               a.t_first, a.t_ans, a.t_acc, a.t_end, m.member, m.trunk,
               a.t_first + CASE WHEN a.strategy = 'ringall' THEN 0 ELSE (j - 1) * 21 END * interval '1 second'
                   AS orig,
               random() AS u_disp, random() AS u
        FROM pa a
        CROSS JOIN LATERAL generate_series(1, a.n_legs) j
        JOIN bench_seed.members m ON m.store = a.store
                                 AND m.ordinal = 1 + (floor(a.u_off * a.n_members)::int + j - 1) % a.n_members
    ), ag AS (
        SELECT ag0.*,
               CASE
                   WHEN agent_result = 'cancelled' THEN 'cancelled'
                   WHEN j = winner AND agent_result = 'accepted' THEN 'accepted'
                   WHEN j = winner AND agent_result = 'declined' THEN 'declined'
                   WHEN strategy = 'ringall' AND agent_result = 'accepted' THEN 'answered_elsewhere'
                   -- rang without success
                   WHEN u_disp < 0.80 THEN 'no_answer'
                   WHEN u_disp < 0.89 THEN 'busy'
                   WHEN u_disp < 0.95 AND strategy = 'hunt' THEN 'declined'
                   WHEN u_disp < 0.97 THEN 'congestion'
                   WHEN u_disp < 0.985 THEN 'unreachable'
                   WHEN u_disp < 0.995 THEN 'failed'
                   ELSE 'no_answer'
               END AS disposition
        FROM ag0
    )
    SELECT ag.id AS request_id, ag.n, ag.attempt, 'agent' AS leg, ag.destination, ag.member, ag.member AS number,
           ag.trunk, ag.orig,
           CASE WHEN ag.disposition NOT IN ('congestion', 'unreachable', 'failed')
                THEN ag.orig + (0.5 + ag.u) * interval '1 second' END AS ringing_at,
           CASE WHEN ag.disposition IN ('accepted', 'declined') AND j = ag.winner THEN ag.t_ans
                WHEN ag.disposition = 'declined' THEN ag.orig + (5 + 10 * ag.u) * interval '1 second' END AS answered_at,
           CASE WHEN ag.disposition = 'accepted' THEN ag.t_acc END AS accepted_at,
           CASE ag.disposition
               WHEN 'accepted' THEN ag.t_end
               WHEN 'answered_elsewhere' THEN ag.t_acc
               WHEN 'declined' THEN CASE WHEN j = ag.winner THEN ag.t_ans + interval '3 seconds'
                                         ELSE ag.orig + (8 + 10 * ag.u) * interval '1 second' END
               WHEN 'no_answer' THEN ag.orig + interval '20 seconds'
               WHEN 'busy' THEN ag.orig + (1 + 2 * ag.u) * interval '1 second'
               WHEN 'cancelled' THEN ag.t_end
               ELSE ag.orig + (0.2 + ag.u) * interval '1 second' END AS ended_at,
           ag.disposition,
           CASE ag.disposition WHEN 'answered_elsewhere' THEN 26 WHEN 'no_answer' THEN 19 WHEN 'busy' THEN 17
                               WHEN 'congestion' THEN 34 WHEN 'unreachable' THEN CASE WHEN ag.u < 0.5 THEN 3 ELSE 1 END
                               WHEN 'failed' THEN CASE WHEN ag.u < 0.5 THEN 38 ELSE 41 END ELSE 16 END AS cause,
           CASE ag.disposition WHEN 'busy' THEN 486 WHEN 'no_answer' THEN 480 WHEN 'congestion' THEN 503
                               WHEN 'unreachable' THEN 404 WHEN 'failed' THEN 500 END AS sip_status
    FROM ag
    UNION ALL
    SELECT a.id, a.n, a.attempt, 'customer', a.destination, NULL,
           CASE WHEN a.anonymised THEN '' ELSE a.phone END,
           CASE WHEN a.u_trunk < 0.03 THEN 'backup' ELSE a.carrier END,
           a.c_orig,
           CASE WHEN a.customer_result IN ('answered', 'no_answer') THEN a.c_orig + interval '2 seconds' END,
           a.c_ans, NULL, a.c_end, a.customer_result,
           CASE a.customer_result WHEN 'answered' THEN 16 WHEN 'busy' THEN 17 WHEN 'no_answer' THEN 19
                                  ELSE CASE WHEN a.u_trunk < 0.5 THEN 1 ELSE 38 END END,
           CASE a.customer_result WHEN 'busy' THEN 486 WHEN 'no_answer' THEN 480 WHEN 'unreachable' THEN 404 END
    FROM pa a
    WHERE a.agent_result = 'accepted';

    ANALYZE pr;
    ANALYZE pa;

    -- ------------------------------------------------------------------ callback_requests, in time order
    INSERT INTO callback_requests (
        id, site, visitor_name, phone_given, phone_e164, phone_country, page_url, referrer, pages_visited,
        utm_source, utm_medium, utm_campaign, product, postal_code, company_size, language, attributes, consent,
        preferred_at, client_ip, user_agent, idempotency_key, request_fingerprint, created_at, state,
        state_changed_at, due_at, attempts, agent_attempts, customer_attempts, outcome, outcome_detail,
        finished_at, route_rule, route_destination, route_chain, anonymised_at)
    SELECT
        r.id, r.site,
        CASE WHEN r.anonymised THEN '' ELSE 'Visitor ' || r.n END,
        CASE WHEN r.anonymised THEN '' ELSE '0' || substr(r.phone, length(r.cc) + 2) END,
        CASE WHEN r.anonymised THEN '' ELSE r.phone END,
        CASE r.cc WHEN '49' THEN 'DE' WHEN '43' THEN 'AT' WHEN '41' THEN 'CH' WHEN '44' THEN 'GB'
                  WHEN '33' THEN 'FR' WHEN '1' THEN 'US' ELSE 'AU' END,
        CASE WHEN r.campaign IS NOT NULL AND NOT r.anonymised
             THEN r.page || '?utm_source=' || x.source || '&utm_medium=' || x.medium || '&utm_campaign=' || r.campaign
             ELSE r.page END,
        CASE WHEN r.u_misc < 0.5 THEN 'https://www.google.com/' WHEN r.u_misc < 0.6 THEN 'https://www.bing.com/' END,
        ARRAY['https://' || r.host || '/', r.page],
        CASE WHEN r.campaign IS NOT NULL THEN x.source END,
        CASE WHEN r.campaign IS NOT NULL THEN x.medium END,
        r.campaign,
        x.product, x.postal_code, x.company_size,
        CASE r.cc WHEN '49' THEN 'de' WHEN '43' THEN 'de' WHEN '41' THEN 'de-CH' WHEN '33' THEN 'fr' ELSE 'en' END,
        jsonb_build_object('product', x.product, 'postal_code', x.postal_code, 'company_size', x.company_size)
            || CASE WHEN r.anonymised THEN '{}'::jsonb ELSE jsonb_build_object('email', 'visitor' || r.n || '@example.org') END,
        r.u_misc < 0.97,
        r.preferred_at,
        CASE WHEN r.anonymised THEN NULL ELSE ('10.' || (r.n / 65536 % 256) || '.' || (r.n / 256 % 256) || '.' || (r.n % 256))::inet END,
        CASE WHEN r.anonymised THEN NULL ELSE 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36' END,
        CASE WHEN r.anonymised OR r.u_misc >= 0.3 THEN NULL ELSE 'idem-' || r.n END,
        CASE WHEN r.anonymised THEN '' ELSE md5(r.n::text) || md5(r.id::text) END,
        r.created_at,
        f.state, coalesce(f.finished_at, r.created_at), f.due_at,
        coalesce(agg.attempts, 0), coalesce(agg.agent_legs, 0), coalesce(agg.customer_legs, 0),
        f.outcome, f.outcome_detail, f.finished_at,
        CASE WHEN r.kind = 'rejected' THEN 'rules[0] (blocked prefixes)'
             ELSE 'rules[' || (1 + r.store % 40) || '] (' || r.destination || ')' END,
        CASE WHEN r.kind <> 'rejected' THEN r.destination END,
        CASE WHEN r.kind <> 'rejected' THEN ARRAY[r.destination] ELSE '{}' END,
        CASE WHEN r.anonymised THEN r.created_at + interval '181 days' END
    FROM pr r
    LEFT JOIN (
        SELECT a.id, count(*) AS attempts, sum(a.n_legs) AS agent_legs,
               count(*) FILTER (WHERE a.agent_result = 'accepted') AS customer_legs,
               max(a.t_end) AS t_end, max(a.t0) AS last_t0
        FROM pa a GROUP BY a.id
    ) agg ON agg.id = r.id
    CROSS JOIN LATERAL (
        SELECT (ARRAY['google', 'facebook', 'newsletter', 'linkedin', 'bing'])[1 + r.n % 5] AS source,
               (ARRAY['cpc', 'social', 'email', 'social', 'cpc'])[1 + r.n % 5] AS medium,
               (ARRAY['widget', 'gadget', 'service', 'plan'])[1 + r.n % 4] AS product,
               lpad((10000 + r.n * 37 % 89999)::text, 5, '0') AS postal_code,
               (ARRAY[1, 5, 12, 50, 250, 1000])[1 + r.n % 6] AS company_size
    ) x
    CROSS JOIN LATERAL (
        SELECT
            CASE WHEN r.kind = 'rejected' THEN 'rejected'
                 WHEN r.active THEN r.first_state
                 WHEN r.kind IN ('expired', 'cancelled') THEN r.kind
                 WHEN r.final = 'connected' THEN 'completed'
                 WHEN r.final = 'cancelled' THEN 'cancelled'
                 ELSE 'failed' END AS state,
            CASE WHEN r.kind = 'rejected' THEN 'rejected'
                 WHEN r.active THEN NULL
                 WHEN r.kind IN ('expired', 'cancelled') THEN r.kind
                 ELSE r.final END AS outcome,
            CASE WHEN r.kind = 'rejected' THEN 'phone number in a blocked range'
                 WHEN r.active THEN NULL
                 WHEN r.kind = 'expired' THEN 'not dialled within dialing.max_age'
                 WHEN r.kind = 'cancelled' THEN 'cancelled by the visitor'
                 WHEN r.final = 'connected' THEN NULL
                 ELSE replace(r.final, '_', ' ') END AS outcome_detail,
            CASE WHEN r.kind = 'rejected' THEN r.created_at
                 WHEN r.active THEN NULL
                 WHEN r.kind = 'expired' THEN r.due_at + interval '1 minute'
                 WHEN r.kind = 'cancelled' THEN r.created_at + (30 + 600 * r.u_misc) * interval '1 second'
                 ELSE agg.t_end + interval '1 second' END AS finished_at,
            coalesce(agg.last_t0, r.due_at) AS due_at
    ) f
    ORDER BY r.created_at;
    GET DIAGNOSTICS n_req = ROW_COUNT;

    -- ------------------------------------------------------------------ callback_events, in time order
    INSERT INTO callback_events (request_id, at, event, from_state, to_state, actor, detail)
    SELECT ev.request_id, ev.at, ev.event, ev.from_state, ev.to_state, ev.actor, ev.detail
    FROM (
        -- intake: the first event of every request carries the routing decision
        SELECT r.id AS request_id, r.created_at AS at, 'accepted' AS event, NULL AS from_state,
               r.first_state AS to_state, 'intake' AS actor,
               CASE WHEN r.kind = 'rejected'
                    THEN jsonb_build_object('page_url', r.page, 'rule', 'rules[0] (blocked prefixes)',
                                            'message', 'phone number in a blocked range')
                    ELSE jsonb_build_object('page_url', r.page, 'rule', 'rules[' || (1 + r.store % 40) || '] ('
                                            || r.destination || ')', 'destination', r.destination)
                         || CASE WHEN r.first_state = 'scheduled'
                                 THEN jsonb_build_object('due_at', to_char(r.due_at AT TIME ZONE 'UTC',
                                                                           'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'))
                                 ELSE '{}'::jsonb END
               END AS detail
        FROM pr r
        UNION ALL
        -- finished without dialling
        SELECT r.id, CASE WHEN r.kind = 'expired' THEN r.due_at + interval '1 minute'
                          ELSE r.created_at + (30 + 600 * r.u_misc) * interval '1 second' END,
               r.kind, r.first_state, r.kind, CASE WHEN r.kind = 'cancelled' THEN 'visitor' ELSE 'dialer' END,
               '{}'::jsonb
        FROM pr r WHERE r.kind IN ('expired', 'cancelled') AND NOT r.active
        UNION ALL
        -- the dialer, per attempt
        SELECT a.id, s.at, s.event, s.from_state, s.to_state, 'dialer', s.detail
        FROM pa a
        CROSS JOIN LATERAL (VALUES
            (a.t0, 'dialing', CASE WHEN a.attempt = 1 THEN a.first_state ELSE 'scheduled' END, 'dialing_agent',
             jsonb_build_object('attempt', a.attempt)),
            (a.t_ans, 'agent_answered', 'dialing_agent', 'agent_answered', '{}'::jsonb),
            (a.t_acc, 'agent_accepted', 'agent_answered', 'accepted', '{}'::jsonb),
            (a.c_orig, 'dialing_customer', 'accepted', 'dialing_customer', '{}'::jsonb),
            (a.c_ans, 'connected', 'dialing_customer', 'connected', '{}'::jsonb),
            (a.t_end + interval '1 second',
             CASE WHEN NOT a.last THEN 'retry_scheduled' WHEN a.customer_result = 'answered' THEN 'completed'
                  WHEN a.agent_result = 'cancelled' THEN 'cancelled' ELSE 'failed' END,
             CASE WHEN a.customer_result = 'answered' THEN 'connected'
                  WHEN a.agent_result = 'accepted' THEN 'dialing_customer'
                  WHEN a.agent_result = 'declined' THEN 'agent_answered' ELSE 'dialing_agent' END,
             CASE WHEN NOT a.last THEN 'scheduled' WHEN a.customer_result = 'answered' THEN 'completed'
                  WHEN a.agent_result = 'cancelled' THEN 'cancelled' ELSE 'failed' END,
             CASE WHEN NOT a.last
                  THEN jsonb_build_object('due_at', to_char((a.t0 + interval '720 seconds') AT TIME ZONE 'UTC',
                                                            'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'))
                  ELSE '{}'::jsonb END)
        ) AS s (at, event, from_state, to_state, detail)
        WHERE s.at IS NOT NULL
    ) ev
    ORDER BY ev.at;
    GET DIAGNOSTICS n_ev = ROW_COUNT;

    -- ------------------------------------------------------------------ call_legs, in time order
    INSERT INTO call_legs (
        request_id, attempt, leg, destination, member, number_dialled, trunk, asterisk_server, channel, uniqueid,
        linkedid, originated_at, ringing_at, answered_at, accepted_at, ended_at, disposition, hangup_cause,
        hangup_cause_text, sip_status, billable_seconds, leg_id, site)
    SELECT l.request_id, l.attempt, l.leg, l.destination, l.member, l.number, l.trunk,
           CASE WHEN l.n % 2 = 0 THEN 'pbx-a' ELSE 'pbx-b' END,
           'PJSIP/' || coalesce(l.trunk, substr(l.member, 7)) || '-' || lpad(to_hex((l.n * 7 + l.attempt) % 16777216), 8, '0'),
           l.leg_id, 'cs-' || l.n || '-' || l.attempt,
           l.orig, l.ringing_at, l.answered_at, l.accepted_at, l.ended_at, l.disposition, l.cause, c.text, l.sip_status,
           CASE WHEN l.answered_at IS NOT NULL THEN floor(extract(epoch FROM l.ended_at - l.answered_at))::int
                ELSE 0 END,
           l.leg_id, r.site
    FROM (SELECT pl.*, replace(gen_random_uuid()::text, '-', '') AS leg_id FROM pl OFFSET 0) l
    JOIN pr r ON r.id = l.request_id
    LEFT JOIN bench_seed.causes c ON c.cause = l.cause
    ORDER BY l.orig;
    GET DIAGNOSTICS n_leg = ROW_COUNT;

    RETURN QUERY SELECT n_req, n_ev, n_leg;
END;
$fn$;
