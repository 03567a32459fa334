-- The webhook engine: the Agent API's `/v1/webhooks` subscriptions, and every
-- delivery owed to a URL (a case's `callback_url` or a subscription), written
-- before its first attempt and rewritten after each one.

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    -- JSON array of event names
    events TEXT NOT NULL,
    -- the signing secret (`whsec_...`), sealed with the server's secret box
    secret_sealed TEXT NOT NULL,
    -- the secret's last four characters, for the masked listing
    secret_hint TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX webhooks_tenant ON webhooks (tenant_id, created_at);

CREATE TABLE webhook_deliveries (
    -- `msg_...`: the `webhook-id` header of every attempt
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    escalation_id TEXT,
    -- the `/v1/webhooks` subscription whose secret signs it; null for a
    -- `callback_url`, signed with the tenant's webhook secret
    subscription_id TEXT,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    -- the exact body, as signed
    payload TEXT NOT NULL,
    -- pending | retrying | delivered | failed
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_status_code INTEGER,
    last_error TEXT,
    next_attempt_at BIGINT,
    delivered_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX webhook_deliveries_escalation ON webhook_deliveries (escalation_id, created_at);
-- What start-up reads back: only the deliveries still owed an attempt.
CREATE INDEX webhook_deliveries_open ON webhook_deliveries (created_at)
    WHERE status IN ('pending', 'retrying');
