-- Dashboard sign-ins. Signing in exchanges an API token for a session: a
-- random id that only the browser holds (as an HttpOnly cookie), stored here
-- by its SHA-256 like the tokens. A session ends when it expires, when it is
-- revoked (sign-out), or when its token is revoked or expires.
-- kind 'link' is a one-time sign-in link (`tally demo` prints one): using it
-- revokes it and starts a session of kind 'session'.
CREATE TABLE sessions (
    id            BIGSERIAL PRIMARY KEY,
    session_hash  TEXT NOT NULL UNIQUE,
    token_id      BIGINT NOT NULL REFERENCES api_tokens (id),
    kind          TEXT NOT NULL CHECK (kind IN ('session', 'link')),
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
