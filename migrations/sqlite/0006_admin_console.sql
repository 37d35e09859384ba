-- The admin console: roles held by users, and the console's browser sessions.

-- A role a user holds; `admin` opens the console.
CREATE TABLE user_roles (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('admin')),
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, role)
);

-- A console session, from the phone form to logout. Only a SHA-256 hash of the cookie
-- value is stored. Until the code is checked, user_id is NULL and phone is the number
-- the code went to; signing in replaces the row with one under a new cookie value.
CREATE TABLE console_sessions (
    id_hash       BLOB PRIMARY KEY NOT NULL,
    csrf          TEXT NOT NULL,
    phone         TEXT,
    user_id       TEXT REFERENCES users (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
