DROP INDEX webhook_deliveries_status;
DROP INDEX webhook_deliveries_newest;
