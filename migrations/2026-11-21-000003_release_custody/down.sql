DROP TABLE custody_events;
