-- An instrument's status at a moment is decided by two events: its latest
-- calibration by then, and its latest event by then that is not a passing
-- calibration (taken out of service, a failed calibration, returned). The
-- fitness read at every result asks for each with LIMIT 1; this index finds
-- the second without walking back over years of passing calibrations.
CREATE INDEX instrument_events_service ON instrument_events (instrument_id, at, id)
    WHERE NOT (kind = 'calibration' AND outcome = 'pass');
