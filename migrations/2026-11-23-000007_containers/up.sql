-- Tenant containers (the Platform API): which runtime a tenant's container
-- runs on, its pairing code, channels with their secrets sealed, the sampled
-- resource figures of running containers, and the input/output split of the
-- hourly token usage.

-- embedded | process: chosen when the tenant is deployed, kept across restarts.
ALTER TABLE tenants ADD COLUMN runtime TEXT NOT NULL DEFAULT 'embedded';
-- `ZERO-XXXX-XXXX`, sealed with the secret box; null until first asked for.
ALTER TABLE tenants ADD COLUMN pairing_code_sealed TEXT;

ALTER TABLE tenant_usage ADD COLUMN tokens_input BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenant_usage ADD COLUMN tokens_output BIGINT NOT NULL DEFAULT 0;

CREATE TABLE channels (
    -- `ch_` + a time-ordered suffix
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- telegram, slack, discord, ...: a lowercase slug
    kind TEXT NOT NULL,
    -- JSON object: the config without its sensitive fields
    config TEXT NOT NULL,
    -- JSON object of the sensitive fields (`bot_token`, `*token*`, `*secret*`,
    -- `*key*`, `password`), sealed with the secret box; null when there are none
    secrets_sealed TEXT,
    enabled BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX channels_tenant ON channels (tenant_id, created_at);

-- One row per running container per sample; null where the runtime has no
-- such figure (the embedded runtime has no process of its own).
CREATE TABLE tenant_resources (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    recorded_at BIGINT NOT NULL,
    -- embedded | process
    runtime TEXT NOT NULL,
    cpu_pct DOUBLE PRECISION,
    mem_bytes BIGINT,
    mem_limit BIGINT,
    disk_bytes BIGINT,
    net_in BIGINT,
    net_out BIGINT,
    pids BIGINT,
    PRIMARY KEY (tenant_id, recorded_at)
);

CREATE INDEX tenant_resources_recorded ON tenant_resources (recorded_at);

-- `zeroclaw sessions`: a tenant's most recent conversations.
CREATE INDEX session_messages_tenant ON session_messages (tenant_id, created_at);
