DROP TABLE store_probes;
DROP TABLE events;
