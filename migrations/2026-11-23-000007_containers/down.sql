DROP INDEX session_messages_tenant;
DROP TABLE tenant_resources;
DROP TABLE channels;
ALTER TABLE tenant_usage DROP COLUMN tokens_output;
ALTER TABLE tenant_usage DROP COLUMN tokens_input;
ALTER TABLE tenants DROP COLUMN pairing_code_sealed;
ALTER TABLE tenants DROP COLUMN runtime;
