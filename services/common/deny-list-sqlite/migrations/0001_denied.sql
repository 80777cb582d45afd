-- Revoked token and login keys, each until it expires (UTC Unix milliseconds).
CREATE TABLE denied (
    key TEXT PRIMARY KEY NOT NULL CHECK (length(key) > 0),
    expires_at INTEGER NOT NULL
) STRICT;

-- Expired rows are swept at every denial.
CREATE INDEX denied_expires_at ON denied (expires_at);
