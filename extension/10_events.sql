-- Events: one row per accepted event, partitioned by month of the event time. Typed columns
-- for what every query needs; properties, traits, context and extra (every other top-level
-- key, integrations among them) as jsonb, so nothing the client sent is lost.

CREATE TABLE cdp.events (
    workspace_id integer NOT NULL,
    event_id text NOT NULL,               -- messageId as sent (or "generated:<hash>" when absent)
    type text NOT NULL,                   -- track | identify | page | screen | group | alias
    event text,                           -- track: the event name
    name text,                            -- page / screen: the name
    anonymous_id text,
    user_id text,
    group_id text,
    previous_id text,
    profile_id bigint,                    -- set by identity resolution
    "timestamp" timestamptz NOT NULL,     -- event time after the clock-skew correction
    original_timestamp timestamptz,       -- the client's clock
    sent_at timestamptz,                  -- the client's clock when sending
    received_at timestamptz NOT NULL,     -- the server's clock
    session_id uuid,
    page_url text,
    page_path text,
    page_title text,
    referrer text,
    referrer_host text,
    referrer_medium text,                 -- search | social | email | internal | unknown
    utm_source text,
    utm_medium text,
    utm_campaign text,
    utm_term text,
    utm_content text,
    device_type text,                     -- desktop | mobile | tablet | bot | other
    os text,
    os_version text,
    browser text,
    browser_version text,
    ip inet,                              -- per cdp.ip_policy
    locale text,
    properties jsonb,
    traits jsonb,
    context jsonb,
    extra jsonb
) PARTITION BY RANGE ("timestamp");
COMMENT ON TABLE cdp.events IS 'Accepted events, one row each, partitioned by month of event time';

-- Events arrive roughly in time order and are read by time range: a BRIN index costs almost
-- nothing at ingest and lets a time-range query skip what it does not need within a month.
-- Indexes for other access paths come with the features that use them.
CREATE INDEX events_time_brin ON cdp.events USING brin ("timestamp") WITH (pages_per_range = 32);
SELECT pg_catalog.pg_extension_config_dump('cdp.events', '');

-- Creates the month's partition of cdp.events if it is missing. Partitions are made as plain
-- tables and attached, which locks cdp.events only in SHARE UPDATE EXCLUSIVE mode: concurrent
-- ingest keeps writing, and two creators queue instead of deadlocking.
CREATE FUNCTION cdp_internal.ensure_events_partition(event_time timestamptz) RETURNS regclass
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    month_start timestamp := date_trunc('month', event_time AT TIME ZONE 'UTC');
    lower_bound timestamptz := month_start AT TIME ZONE 'UTC';
    upper_bound timestamptz := (month_start + interval '1 month') AT TIME ZONE 'UTC';
    partition_name text := format('events_%s', to_char(month_start, 'YYYY_MM'));
    partition regclass;
BEGIN
    LOCK TABLE cdp.events IN SHARE UPDATE EXCLUSIVE MODE;
    partition := to_regclass(format('cdp.%I', partition_name));
    IF partition IS NOT NULL THEN
        RETURN partition;
    END IF;
    EXECUTE format('CREATE TABLE cdp.%I (LIKE cdp.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
                   ' INCLUDING STORAGE INCLUDING COMPRESSION)', partition_name);
    EXECUTE format('ALTER TABLE cdp.events ATTACH PARTITION cdp.%I FOR VALUES FROM (%L) TO (%L)',
                   partition_name, lower_bound, upper_bound);
    RETURN format('cdp.%I', partition_name)::regclass;
END;
$$;
COMMENT ON FUNCTION cdp_internal.ensure_events_partition(timestamptz) IS
    'Creates the monthly partition of cdp.events that holds the given time, if missing';

-- Every payload item that did not become an event, with the reason and the text as sent.
CREATE TABLE cdp.rejected_events (
    rejected_id bigint GENERATED ALWAYS AS IDENTITY,
    workspace_id integer NOT NULL,
    received_at timestamptz NOT NULL,
    reason text NOT NULL,          -- a stable code: invalid_json, size_violation, missing_identity, ...
    detail text NOT NULL,          -- what exactly was wrong
    message_id text,               -- when one could be read
    item_index integer,            -- position in the payload; NULL when the whole payload was rejected
    raw text NOT NULL,             -- the bytes as sent (invalid UTF-8 shown as U+FFFD)
    PRIMARY KEY (workspace_id, rejected_id)
);
COMMENT ON TABLE cdp.rejected_events IS 'Payload items that were not stored as events, with reason and raw text';
CREATE INDEX rejected_events_workspace_time_idx ON cdp.rejected_events (workspace_id, received_at);
SELECT pg_catalog.pg_extension_config_dump('cdp.rejected_events', '');

-- Exact dedup: a unique key the time-partitioned events table cannot give. One row per
-- messageId seen within cdp.dedup_window, as a 128-bit hash of the messageId seeded with the
-- workspace id: one key column, so each comparison in the (random-order, cache-missing) index
-- descent of every claim is one memcmp rather than an int4 and a uuid comparison.
CREATE TABLE cdp_internal.message_ids (
    workspace_id integer NOT NULL,
    message_hash uuid PRIMARY KEY,
    received_at timestamptz NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('cdp_internal.message_ids', '');

-- The open session of each actor ("a:" anonymous id or "u:" user id), continued across batches.
-- Unlogged: it is rewritten by every batch, and losing it in a crash costs only this: the next
-- event of each actor opens a new session. Half of each page is left free so that a batch's
-- update of an actor's row lands on the same page as a heap-only tuple: no new index entry and
-- no new page per update (with full pages each update cost a primary-key insert). Keyed, like
-- message_ids, by a 128-bit hash of the actor seeded with the workspace: a small index whose
-- comparisons are one memcmp each (the actor text was an int4 and a text comparison).
CREATE UNLOGGED TABLE cdp_internal.session_state (
    actor_key uuid PRIMARY KEY,
    workspace_id integer NOT NULL,
    actor text NOT NULL,
    session_id uuid NOT NULL,
    started_at timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    campaign text NOT NULL DEFAULT ''
) WITH (fillfactor = 50);
SELECT pg_catalog.pg_extension_config_dump('cdp_internal.session_state', '');
