-- Key lifecycle: a key is published as `next` before it signs (until `activate_at`),
-- then `active`, then `retired` until every token it signed has expired.

ALTER TABLE signing_keys ADD COLUMN activate_at BIGINT;
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (purpose) WHERE state = 'next';

-- An append-only record of changes and security events: who, what, when.
CREATE TABLE audit_events (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_by_time ON audit_events (at);
