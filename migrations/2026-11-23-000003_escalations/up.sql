-- The Escalation API's aggregates: experts, escalations (one snapshot row per
-- case, rewritten on every transition; history in `events`), and the
-- Idempotency-Key records of POST /escalations.

CREATE TABLE experts (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    -- JSON arrays of strings
    domains TEXT NOT NULL,
    credentials TEXT NOT NULL,
    -- standard | senior | principal
    tier TEXT NOT NULL,
    -- available | busy | offline (capacity is tracked apart)
    status TEXT NOT NULL,
    max_concurrent INTEGER NOT NULL,
    -- SHA-256 of the portal token (`exp_...`); the token itself is never stored
    token_hash TEXT NOT NULL UNIQUE,
    -- quality_score = quality_sum / quality_count (null while the count is 0)
    quality_sum DOUBLE PRECISION NOT NULL DEFAULT 0,
    quality_count BIGINT NOT NULL DEFAULT 0,
    resolution_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX experts_tenant ON experts (tenant_id, created_at);

CREATE TABLE escalations (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    query TEXT NOT NULL,
    -- JSON documents as text; null when not given
    context TEXT,
    -- urgent | standard | batch
    priority TEXT NOT NULL,
    -- pending | routed | in_review | resolved | expired | cancelled
    status TEXT NOT NULL,
    output_schema TEXT,
    callback_url TEXT,
    metadata TEXT,
    task_type TEXT,
    candidates TEXT NOT NULL DEFAULT '[]',
    sla_deadline BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    routed_at BIGINT,
    accepted_at BIGINT,
    resolved_at BIGINT,
    -- when it was expired or cancelled
    closed_at BIGINT,
    -- the expert it is routed to, in review with, or resolved by
    expert_id TEXT,
    -- JSON array of expert ids that declined or missed the reservation
    excluded_experts TEXT NOT NULL DEFAULT '[]',
    -- JSON {answer, confidence, reasoning, source_candidate_id, candidate_action}
    resolution TEXT,
    feedback_score DOUBLE PRECISION,
    feedback_comment TEXT,
    feedback_at BIGINT,
    -- bumped by every feedback write: concurrent feedback cannot double count
    feedback_version BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);

CREATE INDEX escalations_tenant_created ON escalations (tenant_id, created_at);
CREATE INDEX escalations_expert_created ON escalations (expert_id, created_at);
CREATE INDEX escalations_status ON escalations (status);

CREATE TABLE idempotency_keys (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    idem_key TEXT NOT NULL,
    -- SHA-256 of the request body: the same key with another body is 409
    request_hash TEXT NOT NULL,
    escalation_id TEXT NOT NULL,
    -- the first response's body, replayed for 24 h
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, idem_key)
);
