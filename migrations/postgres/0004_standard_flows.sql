-- The browser flow (authorization code with PKCE), refresh tokens, revocation and
-- remembered consent. Every secret value (code, refresh token) is stored as a SHA-256
-- hash only.

-- ID tokens get a key ring of their own.
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_purpose_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_purpose_check
    CHECK (purpose IN ('phone_token', 'access_token', 'id_token'));

-- First-party clients skip the consent page.
ALTER TABLE clients ADD COLUMN first_party BIGINT NOT NULL DEFAULT 0;
-- A sign-in in progress in a browser, from /authorize to the redirect with a code.
CREATE TABLE login_requests (
    id                 TEXT PRIMARY KEY NOT NULL,
    csrf               TEXT NOT NULL,
    client_id          TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    redirect_uri       TEXT NOT NULL,
    redirect_explicit  BIGINT NOT NULL,
    scope              TEXT NOT NULL,
    audiences          TEXT NOT NULL,
    state              TEXT,
    nonce              TEXT,
    code_challenge     TEXT NOT NULL,
    phone              TEXT,
    user_id            TEXT REFERENCES users (id),
    auth_time          BIGINT,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL
);

-- Tokens that descend from one sign-in: revoking the family revokes them all.
CREATE TABLE token_families (
    id          TEXT PRIMARY KEY NOT NULL,
    client_id   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE authorization_codes (
    code_hash          BYTEA PRIMARY KEY NOT NULL,
    family_id          TEXT NOT NULL REFERENCES token_families (id),
    client_id          TEXT NOT NULL,
    redirect_uri       TEXT NOT NULL,
    redirect_explicit  BIGINT NOT NULL,
    user_id            TEXT NOT NULL,
    scope              TEXT NOT NULL,
    audiences          TEXT NOT NULL,
    nonce              TEXT,
    code_challenge     TEXT NOT NULL,
    auth_time          BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    consumed_at        BIGINT
);

CREATE TABLE refresh_tokens (
    token_hash         BYTEA PRIMARY KEY NOT NULL,
    family_id          TEXT NOT NULL REFERENCES token_families (id),
    client_id          TEXT NOT NULL,
    subject            TEXT NOT NULL,
    scope              TEXT NOT NULL,
    audiences          TEXT NOT NULL,
    auth_time          BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    used_at            BIGINT
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

-- Access tokens issued within a family, so revoking the family reaches them.
CREATE TABLE family_access_tokens (
    jti         TEXT PRIMARY KEY NOT NULL,
    family_id   TEXT NOT NULL REFERENCES token_families (id),
    expires_at  BIGINT NOT NULL
);

-- Access and phone tokens revoked one by one, kept until they expire anyway.
CREATE TABLE revoked_tokens (
    jti         TEXT PRIMARY KEY NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE consents (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope       TEXT NOT NULL,
    audiences   TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
