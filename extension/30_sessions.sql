-- Sessions: one row per visit, summarised from the events that ingest gave a session_id.

CREATE VIEW cdp.sessions AS
SELECT
    workspace_id,
    session_id,
    (array_agg(anonymous_id ORDER BY "timestamp") FILTER (WHERE anonymous_id IS NOT NULL))[1] AS anonymous_id,
    (array_agg(user_id ORDER BY "timestamp" DESC) FILTER (WHERE user_id IS NOT NULL))[1] AS user_id,
    min("timestamp") AS started_at,
    max("timestamp") AS ended_at,
    max("timestamp") - min("timestamp") AS duration,
    count(*) AS events,
    count(*) FILTER (WHERE type IN ('page', 'screen')) AS pages,
    -- Pages are paths on the web; in an app, a screen's name stands for its page.
    (array_agg(coalesce(page_path, name) ORDER BY "timestamp") FILTER (WHERE type IN ('page', 'screen')))[1] AS landing_page,
    (array_agg(coalesce(page_path, name) ORDER BY "timestamp" DESC) FILTER (WHERE type IN ('page', 'screen')))[1] AS exit_page,
    array_agg(coalesce(page_path, name) ORDER BY "timestamp") FILTER (WHERE type IN ('page', 'screen')) AS page_sequence,
    -- Attribution is the landing event's: where the visit came from (no referrer: direct), and
    -- its campaign (a new campaign starts a new session, so it is always on the first event).
    (array_agg(referrer_host ORDER BY "timestamp"))[1] AS referrer_host,
    (array_agg(referrer_medium ORDER BY "timestamp"))[1] AS referrer_medium,
    (array_agg(utm_source ORDER BY "timestamp"))[1] AS utm_source,
    (array_agg(utm_medium ORDER BY "timestamp"))[1] AS utm_medium,
    (array_agg(utm_campaign ORDER BY "timestamp"))[1] AS utm_campaign,
    (array_agg(device_type ORDER BY "timestamp") FILTER (WHERE device_type IS NOT NULL))[1] AS device_type,
    count(*) FILTER (WHERE type = 'page') = 1 AND count(*) = 1 AS bounced
FROM cdp.events
WHERE session_id IS NOT NULL
GROUP BY workspace_id, session_id;
COMMENT ON VIEW cdp.sessions IS
    'One row per visit: duration, pages, landing and exit page, page sequence, referrer, campaign, device';
