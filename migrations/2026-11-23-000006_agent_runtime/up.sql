-- The Agent API's runtime state: customers (created by `POST /v1/customers`
-- or on the fly from a message's `customer_id`/`identity`), the session memory
-- of each (Cerebral, session_id), the link from an escalation an SOP opened to
-- the session it came from, and the hourly usage that the daily LLM budget and
-- the Platform API's usage figures are read from.

CREATE TABLE customers (
    -- `cust_` + a time-ordered suffix
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- the caller's own id for this customer (`external_id`, or a message's `customer_id`)
    external_id TEXT,
    email TEXT,
    -- E.164
    phone TEXT,
    name TEXT,
    -- JSON array of strings
    tags TEXT NOT NULL,
    -- JSON object
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE UNIQUE INDEX customers_external ON customers (tenant_id, external_id);
CREATE INDEX customers_email ON customers (tenant_id, email);
CREATE INDEX customers_phone ON customers (tenant_id, phone);

CREATE TABLE session_messages (
    -- `mem_` + a time-ordered suffix: the order of the transcript
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    cerebral_id TEXT NOT NULL REFERENCES cerebrals (id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    -- user | assistant | expert | system (an SOP escalation that expired)
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    customer_id TEXT,
    execution_id TEXT,
    -- the escalation an `escalate` action opened, or whose answer this is
    escalation_id TEXT,
    created_at BIGINT NOT NULL
);

CREATE INDEX session_messages_session ON session_messages (cerebral_id, session_id, id);

CREATE TABLE session_escalations (
    escalation_id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    cerebral_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE tenant_usage (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- the UTC hour, epoch milliseconds
    hour_start BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    tokens BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, hour_start)
);
