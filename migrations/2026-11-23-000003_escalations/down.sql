DROP TABLE idempotency_keys;
DROP TABLE escalations;
DROP TABLE experts;
