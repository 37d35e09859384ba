-- Wrong codes entered for a phone since its last successful sign-in, across all its
-- challenges. The one that reaches the configured maximum locks the phone: no code is
-- sent to it or accepted for it until an operator unlocks it (NIST SP 800-63B limits
-- consecutive failures on one account to 100).
CREATE TABLE phone_failures (
    phone        TEXT PRIMARY KEY NOT NULL,
    consecutive  BIGINT NOT NULL,
    locked_at    BIGINT
);
