DROP INDEX instrument_events_service;
