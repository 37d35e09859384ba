-- The browser flow (authorization code with PKCE), refresh tokens, revocation and
-- remembered consent. Every secret value (code, refresh token) is stored as a SHA-256
-- hash only.

-- ID tokens get a key ring of their own; SQLite cannot change a CHECK constraint in
-- place, so the table is rebuilt.
CREATE TABLE signing_keys_new (
    kid           TEXT PRIMARY KEY NOT NULL,
    purpose       TEXT NOT NULL CHECK (purpose IN ('phone_token', 'access_token', 'id_token')),
    algorithm     TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    private_key   BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    activated_at  INTEGER,
    retired_at    INTEGER,
    activate_at   INTEGER
);
INSERT INTO signing_keys_new (kid, purpose, algorithm, state, private_key, created_at,
                              activated_at, retired_at, activate_at)
SELECT kid, purpose, algorithm, state, private_key, created_at, activated_at, retired_at,
       activate_at
FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_new RENAME TO signing_keys;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (purpose) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (purpose) WHERE state = 'next';

-- First-party clients skip the consent page.
ALTER TABLE clients ADD COLUMN first_party INTEGER NOT NULL DEFAULT 0;

-- A sign-in in progress in a browser, from /authorize to the redirect with a code.
CREATE TABLE login_requests (
    id                 TEXT PRIMARY KEY NOT NULL,
    csrf               TEXT NOT NULL,
    client_id          TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    redirect_uri       TEXT NOT NULL,
    redirect_explicit  INTEGER NOT NULL,
    scope              TEXT NOT NULL,
    audiences          TEXT NOT NULL,
    state              TEXT,
    nonce              TEXT,
    code_challenge     TEXT NOT NULL,
    phone              TEXT,
    user_id            TEXT REFERENCES users (id),
    auth_time          INTEGER,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL
);

-- Tokens that descend from one sign-in: revoking the family revokes them all.
CREATE TABLE token_families (
    id          TEXT PRIMARY KEY NOT NULL,
    client_id   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE authorization_codes (
    code_hash          BLOB PRIMARY KEY NOT NULL,
    family_id          TEXT NOT NULL REFERENCES token_families (id),
    client_id          TEXT NOT NULL,
    redirect_uri       TEXT NOT NULL,
    redirect_explicit  INTEGER NOT NULL,
    user_id            TEXT NOT NULL,
    scope              TEXT NOT NULL,
    audiences          TEXT NOT NULL,
    nonce              TEXT,
    code_challenge     TEXT NOT NULL,
    auth_time          INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    consumed_at        INTEGER
);

CREATE TABLE refresh_tokens (
    token_hash         BLOB PRIMARY KEY NOT NULL,
    family_id          TEXT NOT NULL REFERENCES token_families (id),
    client_id          TEXT NOT NULL,
    subject            TEXT NOT NULL,
    scope              TEXT NOT NULL,
    audiences          TEXT NOT NULL,
    auth_time          INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    used_at            INTEGER
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

-- Access tokens issued within a family, so revoking the family reaches them.
CREATE TABLE family_access_tokens (
    jti         TEXT PRIMARY KEY NOT NULL,
    family_id   TEXT NOT NULL REFERENCES token_families (id),
    expires_at  INTEGER NOT NULL
);

-- Access and phone tokens revoked one by one, kept until they expire anyway.
CREATE TABLE revoked_tokens (
    jti         TEXT PRIMARY KEY NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE consents (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope       TEXT NOT NULL,
    audiences   TEXT NOT NULL,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
