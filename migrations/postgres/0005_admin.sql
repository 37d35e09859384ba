-- Managing users, phones, clients and audiences through the admin API.

-- Optimistic concurrency: every change to a user, client or audience bumps its version,
-- and the admin API's ETag is that version.
ALTER TABLE users ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audiences ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
CREATE INDEX users_by_creation ON users (created_at, id);

-- A phone an admin links to a user before its holder has answered a code has
-- verified_at = 0; the first code answered sets it.
CREATE INDEX phone_links_by_phone ON phone_links (phone_id);
CREATE INDEX phone_links_by_user ON phone_links (user_id);

-- Where an audited change came from: the caller's address, '' for the server itself and
-- the CLI.
ALTER TABLE audit_events ADD COLUMN address TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_events_by_subject ON audit_events (subject);
