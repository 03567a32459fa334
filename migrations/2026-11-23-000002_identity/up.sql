-- One identity under three surfaces: tenants, users, memberships, API keys,
-- revoked JWTs, one-time codes, and the audit log of every identity change.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    -- free | starter | pro | enterprise (the Escalation API's `tier`)
    plan TEXT NOT NULL,
    company TEXT,
    -- The operator tenant owns platform-wide experts; exactly one exists.
    is_operator BOOLEAN NOT NULL DEFAULT FALSE,
    -- Signs `callback_url` deliveries; sealed with the secret box, never plain.
    webhook_secret_sealed TEXT,
    -- The container's lifecycle: draft | deploying | running | stopped | error
    status TEXT NOT NULL,
    -- The container's config as a JSON object (provider, model, temperature,
    -- system_prompt, tool_settings, base_url); the provider API key is apart, sealed.
    config TEXT NOT NULL DEFAULT '{}',
    provider_api_key_sealed TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    name TEXT,
    -- argon2id PHC string; null for users who only sign in by one-time code
    password_hash TEXT,
    verified BOOLEAN NOT NULL DEFAULT FALSE,
    is_super_admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Viewer | Contributor | Manager | Owner
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- escalation (cero_) | agent (sk_live_)
    kind TEXT NOT NULL,
    name TEXT,
    -- SHA-256 of the full key: the key itself is shown once and never stored
    key_hash TEXT NOT NULL UNIQUE,
    preview TEXT NOT NULL,
    cerebral_id TEXT,
    -- anonymous | identified | required
    identity_mode TEXT NOT NULL,
    -- JSON array of origins; [] = server-to-server only
    allowed_origins TEXT NOT NULL,
    -- active | revoked
    status TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

CREATE TABLE jwt_revocations (
    jti TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    -- The token's own expiry: after it the row can go.
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);

CREATE TABLE one_time_codes (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    -- login (6-digit code by mail) | verify_email (token by mail)
    purpose TEXT NOT NULL,
    -- keyed hash of the code, or SHA-256 of the token
    code_hash TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX one_time_codes_email_idx ON one_time_codes (email, purpose);
CREATE INDEX one_time_codes_hash_idx ON one_time_codes (code_hash);

CREATE TABLE audit_entries (
    id TEXT PRIMARY KEY NOT NULL,
    actor_id TEXT,
    action TEXT NOT NULL,
    tenant_id TEXT,
    -- JSON object as text
    detail TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_entries_created_idx ON audit_entries (created_at);
CREATE INDEX audit_entries_action_idx ON audit_entries (action, created_at);
