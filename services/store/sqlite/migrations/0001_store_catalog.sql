-- Store catalog: stores, their tablets, products, price history and stock reservations.
-- Instants are UTC Unix milliseconds. (SQLite twin of the PostgreSQL migration.)

CREATE TABLE stores (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_user_id  BIGINT  NOT NULL UNIQUE,
    name           TEXT    NOT NULL,
    pos_grade      TEXT    NOT NULL CHECK (pos_grade IN ('BRONZE', 'SILVER', 'GOLD')),
    settlement_day INTEGER NOT NULL CHECK (settlement_day IN (1, 5, 10, 15, 20, 25)),
    created_at     BIGINT  NOT NULL
);
CREATE INDEX stores_by_settlement_day ON stores (settlement_day, id);

CREATE TABLE devices (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    store_id           BIGINT NOT NULL REFERENCES stores (id),
    label              TEXT   NOT NULL,
    credential_version BIGINT NOT NULL DEFAULT 1,
    revoked_at         BIGINT,
    created_at         BIGINT NOT NULL,
    UNIQUE (store_id, label)
);

CREATE TABLE products (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    store_id   BIGINT NOT NULL REFERENCES stores (id),
    name       TEXT   NOT NULL,
    category   TEXT   NOT NULL CHECK (category IN ('MAIN_MENU', 'SUB_MENU', 'DRINK')),
    price      BIGINT NOT NULL CHECK (price BETWEEN 0 AND 10000000),
    -- The database refuses negative stock: the last guard against overselling.
    stock      BIGINT NOT NULL CHECK (stock >= 0),
    base_stock BIGINT NOT NULL CHECK (base_stock BETWEEN 0 AND 10000000),
    deleted_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX products_by_store ON products (store_id, id);

CREATE TABLE product_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id BIGINT NOT NULL REFERENCES products (id),
    price      BIGINT NOT NULL,
    base_stock BIGINT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX product_history_by_product ON product_history (product_id, id);

CREATE TABLE stock_reservations (
    order_id   TEXT   PRIMARY KEY,
    store_id   BIGINT NOT NULL,
    status     TEXT   NOT NULL CHECK (status IN ('RESERVED', 'CONFIRMED', 'RELEASED')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX stock_reservations_open ON stock_reservations (status, created_at);

CREATE TABLE stock_reservation_lines (
    order_id     TEXT   NOT NULL REFERENCES stock_reservations (order_id),
    product_id   BIGINT NOT NULL,
    product_name TEXT   NOT NULL,
    category     TEXT   NOT NULL,
    unit_price   BIGINT NOT NULL,
    count        BIGINT NOT NULL CHECK (count > 0),
    PRIMARY KEY (order_id, product_id)
);
