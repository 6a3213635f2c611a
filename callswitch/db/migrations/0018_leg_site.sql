-- 0018: the site of each call leg, so that reports filtered by site read only that site's legs (issue 5).
--
-- The trunk reports filtered by site (`callswitch report trunks --site X`) had to join every leg of the
-- period to its request to learn the site: over 2 s for a month of a large franchise. The leg now carries
-- its request's site (a request never changes site), filled by a trigger from callback_requests whatever
-- writes the leg, and an index on (site, originated_at) serves the filtered reports.
--
-- On an existing database the UPDATE below rewrites every leg once; run it in a quiet hour.

ALTER TABLE call_legs ADD COLUMN site text;

COMMENT ON COLUMN call_legs.site IS
    'Site of the request the leg was dialled for (callback_requests.site), copied for reports by site.';

UPDATE call_legs l SET site = r.site FROM callback_requests r WHERE r.id = l.request_id AND l.site IS NULL;

CREATE FUNCTION cs_call_legs_set_site() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT r.site INTO NEW.site FROM callback_requests r WHERE r.id = NEW.request_id;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION cs_call_legs_set_site() IS
    'Trigger function: copies the request''s site onto a new call leg (migration 0018). Not for analysts.';

CREATE TRIGGER call_legs_site BEFORE INSERT OR UPDATE OF request_id ON call_legs
    FOR EACH ROW EXECUTE FUNCTION cs_call_legs_set_site();

CREATE INDEX call_legs_site_originated_idx ON call_legs (site, originated_at) WHERE trunk IS NOT NULL;
COMMENT ON INDEX call_legs_site_originated_idx IS
    'Trunk legs per site and time: the trunk reports filtered by site (cs_trunk_legs).';

-- The legs of the trunk reports: the same as in migration 0013, the site now read from the leg itself.
CREATE OR REPLACE FUNCTION cs_trunk_legs(p_since timestamptz, p_until timestamptz, p_site text)
RETURNS SETOF call_legs
LANGUAGE sql STABLE
AS $$
    SELECT l.* FROM call_legs l
    WHERE p_site IS NULL AND l.trunk IS NOT NULL
      AND l.originated_at >= coalesce(p_since, '-infinity') AND l.originated_at < coalesce(p_until, 'infinity')
    UNION ALL
    SELECT l.* FROM call_legs l
    WHERE p_site IS NOT NULL AND l.site = p_site AND l.trunk IS NOT NULL
      AND l.originated_at >= coalesce(p_since, '-infinity') AND l.originated_at < coalesce(p_until, 'infinity')
$$;
