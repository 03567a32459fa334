-- The append-only event log: what happened to which entity, in order.
CREATE TABLE events (
    id TEXT PRIMARY KEY NOT NULL,
    stream TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_stream_created_idx ON events (stream, created_at);

-- Scratch rows of `switchboard bench-store`, which measures durable writes on
-- the configured database; each run deletes its own rows unless told to keep them.
CREATE TABLE store_probes (
    id TEXT PRIMARY KEY NOT NULL,
    run_id TEXT NOT NULL,
    sender BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX store_probes_run_idx ON store_probes (run_id);
