-- Bills (trades), the orders on them with their lines as ordered, and payments.
-- Closed sets are enum types named after the service, so services can share a database.

CREATE TYPE trade_status AS ENUM ('OPEN', 'PAID');
CREATE TYPE trade_product_category AS ENUM ('MAIN_MENU', 'SUB_MENU', 'DRINK');
CREATE TYPE trade_payment_method AS ENUM ('CASH', 'CARD');
CREATE TYPE trade_card_company AS ENUM ('K', 'H', 'S');

CREATE TABLE trades (
    id        BIGSERIAL    PRIMARY KEY,
    store_id  BIGINT       NOT NULL,
    device_id BIGINT       NOT NULL,
    amount    BIGINT       NOT NULL CHECK (amount >= 0),
    status    trade_status NOT NULL,
    opened_at timestamptz  NOT NULL,
    paid_at   timestamptz,
    CONSTRAINT trades_paid_when_paid CHECK ((status = 'PAID') = (paid_at IS NOT NULL))
);
-- A device has at most one open bill: racing first orders settle here.
CREATE UNIQUE INDEX trades_one_open_per_device ON trades (device_id) WHERE status = 'OPEN';
CREATE INDEX trades_open_by_store ON trades (store_id, device_id) WHERE status = 'OPEN';
CREATE INDEX trades_by_store ON trades (store_id, id);

CREATE TABLE trade_orders (
    id              TEXT        PRIMARY KEY,
    trade_id        BIGINT      NOT NULL REFERENCES trades (id),
    store_id        BIGINT      NOT NULL,
    device_id       BIGINT      NOT NULL,
    amount          BIGINT      NOT NULL CHECK (amount >= 0),
    idempotency_key TEXT        NOT NULL,
    fingerprint     TEXT        NOT NULL,
    created_at      timestamptz NOT NULL,
    UNIQUE (device_id, idempotency_key)
);
CREATE INDEX trade_orders_by_trade ON trade_orders (trade_id, created_at, id);

CREATE TABLE trade_order_lines (
    order_id     TEXT                   NOT NULL REFERENCES trade_orders (id),
    product_id   BIGINT                 NOT NULL,
    product_name TEXT                   NOT NULL,
    category     trade_product_category NOT NULL,
    unit_price   BIGINT                 NOT NULL CHECK (unit_price >= 0),
    count        BIGINT                 NOT NULL CHECK (count > 0),
    amount       BIGINT                 NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE trade_payments (
    id              BIGSERIAL            PRIMARY KEY,
    trade_id        BIGINT               NOT NULL UNIQUE REFERENCES trades (id),
    store_id        BIGINT               NOT NULL,
    device_id       BIGINT               NOT NULL,
    method          trade_payment_method NOT NULL,
    card_company    trade_card_company,
    amount          BIGINT               NOT NULL CHECK (amount >= 0),
    card_fee        BIGINT               NOT NULL CHECK (card_fee >= 0),
    idempotency_key TEXT                 NOT NULL,
    fingerprint     TEXT                 NOT NULL,
    paid_at         timestamptz          NOT NULL,
    UNIQUE (store_id, idempotency_key),
    -- A card payment names its company; cash has none.
    CONSTRAINT trade_payments_company_of_cards
        CHECK ((method = 'CARD') = (card_company IS NOT NULL))
);
CREATE INDEX trade_payments_by_store_time ON trade_payments (store_id, paid_at DESC, id DESC);

-- Order ids given up on: the stock reconciler was told the order does not exist, and
-- gave its stock back, so the order must never be committed after all.
CREATE TABLE trade_abandoned_orders (
    order_id     TEXT PRIMARY KEY NOT NULL,
    abandoned_at timestamptz NOT NULL
);
