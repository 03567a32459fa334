-- Cerebrals: a tenant's deployed assistants, managed with the JWT on
-- `/v1/cerebrals`. Their SOPs are stored as validated, normalised JSON.

CREATE TABLE cerebrals (
    -- a UUID v7, hyphenated
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- these three override the tenant's configuration when set
    system_prompt TEXT,
    provider TEXT,
    model TEXT,
    -- draft | active | paused
    status TEXT NOT NULL,
    -- JSON array of SOPs
    sops TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX cerebrals_tenant ON cerebrals (tenant_id, created_at);
