-- Scheduled work, called by any scheduler (pg_cron where installed): never a hidden thread.

-- Forgets messageIds older than cdp.dedup_window, drops session states nobody can continue,
-- creates next month's events partition ahead of time, and moves windowed computed traits to
-- `at` (now, unless a replay or a test moves time explicitly).
CREATE FUNCTION cdp.tick(at timestamptz DEFAULT now(), OUT task text, OUT affected bigint)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dedup_window text := coalesce(current_setting('cdp.dedup_window', true), '7 days');
    session_timeout interval := coalesce(current_setting('cdp.session_timeout', true), '30 minutes')::interval;
    n bigint;
BEGIN
    IF lower(dedup_window) NOT IN ('infinity', 'forever') THEN
        DELETE FROM cdp_internal.message_ids WHERE received_at < now() - dedup_window::interval;
        GET DIAGNOSTICS n = ROW_COUNT;
        task := 'forget message ids older than ' || dedup_window; affected := n; RETURN NEXT;
    END IF;

    -- A state idle for longer than the timeout only tells that the next event opens a new
    -- session, which an absent state tells as well (plus a day of grace for late events).
    DELETE FROM cdp_internal.session_state WHERE last_seen < now() - session_timeout - interval '1 day';
    GET DIAGNOSTICS n = ROW_COUNT;
    task := 'drop idle session states'; affected := n; RETURN NEXT;

    SELECT count(*) INTO n FROM pg_inherits WHERE inhparent = 'cdp.events'::regclass;
    PERFORM cdp_internal.ensure_events_partition(now() + interval '1 month');
    task := 'create next month''s events partition';
    SELECT count(*) - n INTO affected FROM pg_inherits WHERE inhparent = 'cdp.events'::regclass;
    RETURN NEXT;

    SELECT coalesce(sum(cdp_internal.move_computed_traits(w.workspace_id, tick.at)), 0) INTO n
    FROM (SELECT DISTINCT c.workspace_id FROM cdp.computed_traits c ORDER BY 1) w;
    task := 'move windowed computed traits'; affected := n; RETURN NEXT;

    SELECT coalesce(sum(cdp_internal.fire_due_triggers(w.workspace_id, tick.at)), 0) INTO n
    FROM (SELECT DISTINCT s.workspace_id FROM cdp.segments s WHERE s.mode = 'trigger' ORDER BY 1) w;
    task := 'fire due triggers'; affected := n; RETURN NEXT;
    -- Counted events too old to count again.
    DELETE FROM cdp_internal.trigger_state t USING cdp.segments s
    WHERE s.segment_id = t.segment_id AND t.deadline IS NULL AND t.event_at < tick.at - (s.trigger_rule ->> 'within')::interval;
END;
$$;
COMMENT ON FUNCTION cdp.tick(timestamptz) IS
    'Periodic maintenance: dedup window, idle sessions, partitions ahead of time, windowed computed traits and their segments, due triggers';
