DROP TABLE tenant_usage;
DROP TABLE session_escalations;
DROP TABLE session_messages;
DROP TABLE customers;
