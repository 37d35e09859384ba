-- The core schema: users and their phones, clients and audiences, OTP challenges and
-- signing keys. Times are whole seconds since the Unix epoch (UTC), so no behaviour
-- depends on a session time zone.

CREATE TABLE users (
    id          TEXT PRIMARY KEY NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at  BIGINT NOT NULL
);

-- A phone exists once its number has been verified; it belongs to at most one user.
CREATE TABLE phones (
    id           TEXT PRIMARY KEY NOT NULL,
    e164         TEXT NOT NULL UNIQUE,
    user_id      TEXT REFERENCES users (id),
    verified_at  BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX phones_by_user ON phones (user_id);

-- Every link of a phone to a user, kept when the phone is unlinked or moved.
CREATE TABLE phone_links (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone_id     TEXT NOT NULL REFERENCES phones (id),
    user_id      TEXT NOT NULL REFERENCES users (id),
    linked_at    BIGINT NOT NULL,
    unlinked_at  BIGINT
);

CREATE TABLE audiences (
    identifier        TEXT PRIMARY KEY NOT NULL,
    access_token_ttl  BIGINT NOT NULL,
    created_at        BIGINT NOT NULL
);

CREATE TABLE audience_scopes (
    audience  TEXT NOT NULL REFERENCES audiences (identifier) ON DELETE CASCADE,
    scope     TEXT NOT NULL,
    PRIMARY KEY (audience, scope)
);

-- grant_types, redirect_uris and scopes are space-separated lists: none of their
-- values may contain a space.
CREATE TABLE clients (
    id                TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('public', 'confidential')),
    secret_hash       BYTEA,
    grant_types       TEXT NOT NULL,
    redirect_uris     TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    default_audience  TEXT REFERENCES audiences (identifier),
    status            TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at        BIGINT NOT NULL
);

CREATE TABLE client_audiences (
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    audience   TEXT NOT NULL REFERENCES audiences (identifier) ON DELETE CASCADE,
    PRIMARY KEY (client_id, audience)
);

-- One live challenge per phone and client; a new start replaces the old one.
-- code_hash is an HMAC of the code keyed by a server secret; the code is never stored.
CREATE TABLE otp_challenges (
    id             TEXT PRIMARY KEY NOT NULL,
    phone          TEXT NOT NULL,
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    code_hash      BYTEA NOT NULL,
    attempts_left  BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    consumed_at    BIGINT,
    UNIQUE (phone, client_id)
);

CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY NOT NULL,
    purpose       TEXT NOT NULL CHECK (purpose IN ('phone_token', 'access_token')),
    algorithm     TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    private_key   BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    activated_at  BIGINT,
    retired_at    BIGINT
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (purpose) WHERE state = 'active';

-- Secrets the server generates for itself, such as the OTP hashing key.
CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY NOT NULL,
    value       BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
