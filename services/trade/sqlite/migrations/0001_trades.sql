-- Bills (trades), the orders on them with their lines as ordered, and payments.
-- Instants are UTC Unix milliseconds; closed sets are checked text. (SQLite twin of the
-- PostgreSQL migration.)

CREATE TABLE trades (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    store_id  INTEGER NOT NULL,
    device_id INTEGER NOT NULL,
    amount    INTEGER NOT NULL CHECK (amount >= 0),
    status    TEXT    NOT NULL CHECK (status IN ('OPEN', 'PAID')),
    opened_at INTEGER NOT NULL,
    paid_at   INTEGER,
    CHECK ((status = 'PAID') = (paid_at IS NOT NULL))
) STRICT;
-- A device has at most one open bill.
CREATE UNIQUE INDEX trades_one_open_per_device ON trades (device_id) WHERE status = 'OPEN';
CREATE INDEX trades_open_by_store ON trades (store_id, device_id) WHERE status = 'OPEN';
CREATE INDEX trades_by_store ON trades (store_id, id);

CREATE TABLE trade_orders (
    id              TEXT    PRIMARY KEY,
    trade_id        INTEGER NOT NULL REFERENCES trades (id),
    store_id        INTEGER NOT NULL,
    device_id       INTEGER NOT NULL,
    amount          INTEGER NOT NULL CHECK (amount >= 0),
    idempotency_key TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (device_id, idempotency_key)
) STRICT;
CREATE INDEX trade_orders_by_trade ON trade_orders (trade_id, created_at, id);

CREATE TABLE trade_order_lines (
    order_id     TEXT    NOT NULL REFERENCES trade_orders (id),
    product_id   INTEGER NOT NULL,
    product_name TEXT    NOT NULL,
    category     TEXT    NOT NULL CHECK (category IN ('MAIN_MENU', 'SUB_MENU', 'DRINK')),
    unit_price   INTEGER NOT NULL CHECK (unit_price >= 0),
    count        INTEGER NOT NULL CHECK (count > 0),
    amount       INTEGER NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (order_id, product_id)
) STRICT;

CREATE TABLE trade_payments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    trade_id        INTEGER NOT NULL UNIQUE REFERENCES trades (id),
    store_id        INTEGER NOT NULL,
    device_id       INTEGER NOT NULL,
    method          TEXT    NOT NULL CHECK (method IN ('CASH', 'CARD')),
    card_company    TEXT    CHECK (card_company IN ('K', 'H', 'S')),
    amount          INTEGER NOT NULL CHECK (amount >= 0),
    card_fee        INTEGER NOT NULL CHECK (card_fee >= 0),
    idempotency_key TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL,
    paid_at         INTEGER NOT NULL,
    UNIQUE (store_id, idempotency_key),
    -- A card payment names its company; cash has none.
    CHECK ((method = 'CARD') = (card_company IS NOT NULL))
) STRICT;
CREATE INDEX trade_payments_by_store_time ON trade_payments (store_id, paid_at DESC, id DESC);

-- Order ids given up on: the stock reconciler was told the order does not exist, and
-- gave its stock back, so the order must never be committed after all.
CREATE TABLE trade_abandoned_orders (
    order_id     TEXT PRIMARY KEY NOT NULL,
    abandoned_at INTEGER NOT NULL
) STRICT;
