DROP TABLE cerebrals;
