DROP TABLE directory_event_purges;
DROP TABLE directory_events;
