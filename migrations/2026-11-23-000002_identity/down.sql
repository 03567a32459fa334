DROP TABLE audit_entries;
DROP TABLE one_time_codes;
DROP TABLE jwt_revocations;
DROP TABLE api_keys;
DROP TABLE memberships;
DROP TABLE users;
DROP TABLE tenants;
