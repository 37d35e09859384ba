-- Abuse limits: every counter that decides whether a code may be sent lives here, so the
-- limits hold across instances. Times are whole seconds since the Unix epoch (UTC).

-- Sends counted per (kind, key) in windows that start at multiples of the window length.
-- kind is phone, client, address, region, prefix, budget or exhausted.
CREATE TABLE limit_counters (
    kind          TEXT NOT NULL,
    key           TEXT NOT NULL,
    window_start  INTEGER NOT NULL,
    hits          INTEGER NOT NULL,
    PRIMARY KEY (kind, key, window_start)
);
CREATE INDEX limit_counters_by_window ON limit_counters (window_start);

-- Keys refused until a time, e.g. a phone whose challenges were exhausted too often.
CREATE TABLE limit_blocks (
    kind           TEXT NOT NULL,
    key            TEXT NOT NULL,
    blocked_until  INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);

-- Sends to a phone since it was last verified, and when the next one may go out.
CREATE TABLE phone_backoff (
    phone       TEXT PRIMARY KEY NOT NULL,
    unverified  INTEGER NOT NULL,
    gap         INTEGER NOT NULL,
    next_at     INTEGER NOT NULL,
    last_at     INTEGER NOT NULL
);
