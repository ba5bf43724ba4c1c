-- Schemas and workspaces. `cdp` (created by CREATE EXTENSION from the control file) is the
-- public API; `cdp_internal` holds state users do not query directly.

CREATE SCHEMA cdp_internal;
COMMENT ON SCHEMA cdp_internal IS 'pg_cdp internal state; not a stable interface';

-- Every customer-data table carries workspace_id: the tenant, and the distribution column if
-- the data ever moves to Citus. Workspace 1 is the default.
CREATE TABLE cdp.workspaces (
    workspace_id integer PRIMARY KEY CHECK (workspace_id > 0),
    name text NOT NULL UNIQUE CHECK (name <> ''),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE cdp.workspaces IS 'Tenants; every customer-data row belongs to one';
INSERT INTO cdp.workspaces (workspace_id, name) VALUES (1, 'default');
SELECT pg_catalog.pg_extension_config_dump('cdp.workspaces', 'WHERE workspace_id <> 1');

CREATE FUNCTION cdp.create_workspace(name text) RETURNS integer
LANGUAGE sql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO cdp.workspaces (workspace_id, name)
    SELECT coalesce(max(workspace_id), 0) + 1, create_workspace.name FROM cdp.workspaces
    RETURNING workspace_id;
END;
COMMENT ON FUNCTION cdp.create_workspace(text) IS 'Creates a workspace (tenant) and returns its id';
