-- What the operator console reads (GET /api/monitoring/webhooks): the newest
-- deliveries of every tenant, of any status or of one, without sorting the
-- table; the count per status then reads the second index alone.

CREATE INDEX webhook_deliveries_newest ON webhook_deliveries (created_at, id);
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status, created_at, id);
