-- Roles and tenants: an ingest role that can only ingest, into its own workspace; an analyst
-- who reads its own tenant's events and profiles with identifiers pseudonymised, and nothing
-- else, whatever ids it guesses.
SET timezone = 'UTC';
SELECT cdp.create_workspace('tenant-a') AS wa \gset
SELECT cdp.create_workspace('tenant-b') AS wb \gset
SELECT cdp.set_secret('tenant-a-secret-long-enough', :wa);
SELECT rolname FROM pg_roles WHERE rolname LIKE 'cdp\_%' AND rolname IN ('cdp_admin', 'cdp_ingest', 'cdp_analyst') ORDER BY 1;
CREATE ROLE access_test_ingest_a LOGIN;
CREATE ROLE access_test_analyst_a LOGIN;
GRANT cdp_ingest TO access_test_ingest_a;
GRANT cdp_analyst TO access_test_analyst_a;
INSERT INTO cdp.workspace_grants (role_name, workspace_id) VALUES
  ('access_test_ingest_a', :wa), ('access_test_analyst_a', :wa);
-- Tenant B's data, written by the admin.
SELECT accepted FROM cdp.ingest('{"type":"identify","userId":"b-secret-user","traits":{"email":"b.person@example.com"},"messageId":"b1"}',
                                workspace_id => :wb);
INSERT INTO cdp.workspace_grants (role_name, workspace_id) VALUES ('cdp_admin', :wb);

-- The ingest role writes into A, not into B, and reads nothing.
SET ROLE access_test_ingest_a;
SELECT accepted FROM cdp.ingest('{"type":"identify","userId":"a-user","traits":{"email":"A.Person@Example.com","plan":"pro"},
                                  "context":{"ip":"198.51.100.7"},"messageId":"a1"}', workspace_id => :wa);
\set VERBOSITY terse
SELECT accepted FROM cdp.ingest('{"type":"track","event":"Sneaky","userId":"x","messageId":"a2"}', workspace_id => :wb);
\set VERBOSITY default
SELECT count(*) FROM cdp.events;
SELECT count(*) FROM cdp_analyst.events;
RESET ROLE;

-- The analyst sees tenant A's events and profiles, identifiers as keyed hashes, no IP, email
-- hashed inside traits, other traits as they are.
SET ROLE access_test_analyst_a;
SELECT workspace_id = :wa AS own_tenant, user_id LIKE 'h:%' AS user_hashed, length(user_id) AS hash_length, ip,
       traits ->> 'email' LIKE 'h:%' AS email_hashed, traits ->> 'plan' AS plan, context
FROM cdp_analyst.events;
SELECT traits ->> 'email' = (SELECT traits ->> 'email' FROM cdp_analyst.events) AS same_pseudonym_everywhere,
       traits ->> 'plan' AS plan
FROM cdp_analyst.profiles;
-- Guessing tenant B's ids gets nothing; raw tables, audiences and functions over them are closed.
SELECT count(*) AS b_events FROM cdp_analyst.events WHERE workspace_id = :wb;
SELECT count(*) AS b_profiles FROM cdp_analyst.profiles WHERE workspace_id = :wb;
SELECT count(*) FROM cdp.events WHERE workspace_id = :wb;
SELECT count(*) FROM cdp.identifiers;
SELECT count(*) FROM cdp_internal.secrets;
SELECT cdp.profile('user_id', 'b-secret-user', :wb);
SELECT cdp_internal.keyed_hash(1, 'email', 'a.person@example.com');
SELECT count(*) FROM cdp.events_by_profile;
RESET ROLE;

-- The hash is HMAC-SHA256 under the workspace's secret of "field:" + the value normalised as
-- that identifier type; IPs are dropped, other fields kept; without a secret, nothing is shown.
SELECT cdp_internal.pseudonym(:wa, 'email', '  A.Person@Example.COM ')
         = 'h:' || encode(cdp_internal.hmac_sha256(s.secret, 'email:a.person@example.com'), 'hex') AS hash_as_documented,
       cdp_internal.pseudonym(:wa, 'ip', '203.0.113.9') IS NULL AS ip_dropped,
       cdp_internal.pseudonym(:wa, 'city', 'Haifa') AS kept,
       cdp_internal.pseudonym(:wb, 'email', 'b.person@example.com') IS NULL AS no_secret_nothing_shown
FROM cdp_internal.secrets s WHERE s.workspace_id = :wa;
-- In traits: strings as above; other values kept unless the key's policy says otherwise.
SELECT t ->> 'phone' = cdp_internal.pseudonym(:wa, 'phone', '+972501234567') AS phone_hashed_normalised,
       t - 'phone' AS others
FROM cdp_internal.pseudonymise_traits(:wa, '{"phone": "+972 50-123-4567", "email": 5, "plan": "pro", "tags": ["a", 1], "ip": "203.0.113.9"}') t;

-- What analysts see is set per field: keep the plan, drop the email.
INSERT INTO cdp.pseudonymisation (workspace_id, field, action) VALUES (:wa, 'email', 'drop'), (:wa, 'user_id', 'keep');
SET ROLE access_test_analyst_a;
SELECT user_id, traits FROM cdp_analyst.events;
RESET ROLE;
SELECT cdp_internal.pseudonymise_traits(:wa, '{"email": 5, "plan": "pro"}') AS email_dropped_whatever_its_kind;

-- A tenant's own reporting role, granted the events table itself: row-level security shows it
-- its workspace's rows only.
CREATE ROLE access_test_bi_a LOGIN;
GRANT USAGE ON SCHEMA cdp TO access_test_bi_a;
GRANT SELECT ON cdp.events, cdp.profiles, cdp.identity_edges TO access_test_bi_a;
INSERT INTO cdp.workspace_grants (role_name, workspace_id) VALUES ('access_test_bi_a', :wa);
-- Even granted tenant B's audience view, it sees none of B's members through it.
SELECT cdp.create_segment('everyone', 'true', workspace_id => :wb) AS b_members;
SELECT cdp_internal.segment_view(:wb, 'everyone') AS b_view \gset
GRANT USAGE ON SCHEMA cdp_audiences TO access_test_bi_a;
GRANT SELECT ON cdp.segment_members, cdp.profile_records, :b_view TO access_test_bi_a;
-- The lines of a query's plan, as the role running it gets it.
CREATE FUNCTION plan_lines(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || query;
END $$;
SET ROLE access_test_bi_a;
SELECT count(*) AS b_members_seen FROM :b_view;
SELECT count(*) AS rows_seen, bool_and(workspace_id = :wa) AS all_own FROM cdp.events;
-- The policy works out the role's workspaces once per query (an InitPlan), not once per row:
-- checked per row, a count over 200k events took 34 s instead of 0.09 s.
SELECT bool_or(line ~ 'InitPlan') AS once_per_query, NOT bool_or(line ~ 'SubPlan') AS nothing_per_row
FROM plan_lines('SELECT count(*) FROM cdp.events') AS line;
SELECT count(*) AS b_rows FROM cdp.events WHERE workspace_id = :wb;
SELECT count(*) AS b_profiles FROM cdp.profiles WHERE workspace_id = :wb;
-- The identity edges are a view over the extension's own tables, and show the same.
SELECT count(*) AS edges_seen, bool_and(workspace_id = :wa) AS all_own FROM cdp.identity_edges;
RESET ROLE;
SELECT count(*) AS b_edges_exist FROM cdp.identity_edges WHERE workspace_id = :wb;
REVOKE ALL ON cdp.events, cdp.profiles, cdp.identity_edges, cdp.segment_members, cdp.profile_records, :b_view FROM access_test_bi_a;
REVOKE USAGE ON SCHEMA cdp, cdp_audiences FROM access_test_bi_a;
SELECT cdp.drop_segment('everyone', :wb) AS exits;
DROP ROLE access_test_bi_a;
DROP FUNCTION plan_lines(text);

DELETE FROM cdp.workspace_grants WHERE workspace_id IN (:wa, :wb);
DROP ROLE access_test_ingest_a;
DROP ROLE access_test_analyst_a;
