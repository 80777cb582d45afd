-- Owners. A signup's store request is kept on the user until the store exists, so an
-- interrupted signup is completed by a retry or the next login.
-- Instants are UTC Unix milliseconds.

CREATE TABLE users (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    email                  TEXT   NOT NULL UNIQUE,
    name                   TEXT   NOT NULL,
    phone                  TEXT   NOT NULL,
    provider               TEXT   NOT NULL,
    provider_subject       TEXT   NOT NULL,
    store_id               BIGINT,
    pending_store_name     TEXT,
    pending_pos_grade      BIGINT,
    pending_settlement_day BIGINT,
    created_at             BIGINT NOT NULL,
    UNIQUE (provider, provider_subject)
);
