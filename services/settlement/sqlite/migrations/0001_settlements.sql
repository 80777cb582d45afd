-- What the aggregation batch writes: product sales and settlements per store, term and
-- window (stored under its first local date, as ISO text, which sorts as dates do), each
-- window replaced whole by a run. Closed sets are checked text. (SQLite twin of the
-- PostgreSQL migration.)

-- The stores a window of product sales was aggregated for: one that sold nothing then
-- has its window here and no rows in product_sales (zero, not "not aggregated").
CREATE TABLE product_sales_windows (
    store_id   INTEGER NOT NULL,
    term       TEXT    NOT NULL CHECK (term IN ('DAY', 'WEEK', 'MONTH')),
    start_date TEXT    NOT NULL CHECK (coalesce(date(start_date, '+0 days') = start_date, 0)),
    end_date   TEXT NOT NULL
        CHECK (coalesce(date(end_date, '+0 days') = end_date, 0) AND end_date > start_date),
    PRIMARY KEY (store_id, term, start_date)
) STRICT;
CREATE INDEX product_sales_windows_by_window ON product_sales_windows (term, start_date);

CREATE TABLE product_sales (
    store_id     INTEGER NOT NULL,
    term         TEXT    NOT NULL,
    start_date   TEXT    NOT NULL,
    product_id   INTEGER NOT NULL,
    product_name TEXT    NOT NULL,
    category     TEXT    NOT NULL CHECK (category IN ('MAIN_MENU', 'SUB_MENU', 'DRINK')),
    sale_count   INTEGER NOT NULL CHECK (sale_count > 0),
    sale_amount  INTEGER NOT NULL CHECK (sale_amount >= 0),
    PRIMARY KEY (store_id, term, start_date, product_id),
    FOREIGN KEY (store_id, term, start_date) REFERENCES product_sales_windows
) STRICT;

CREATE TABLE settlements (
    store_id    INTEGER NOT NULL,
    term        TEXT    NOT NULL CHECK (term IN ('DAY', 'WEEK', 'MONTH')),
    start_date  TEXT    NOT NULL CHECK (coalesce(date(start_date, '+0 days') = start_date, 0)),
    end_date    TEXT NOT NULL
        CHECK (coalesce(date(end_date, '+0 days') = end_date, 0) AND end_date > start_date),
    revenue     INTEGER NOT NULL CHECK (revenue >= 0),
    fee         INTEGER NOT NULL CHECK (fee >= 0 AND fee <= revenue),
    trade_count INTEGER NOT NULL CHECK (trade_count >= 0),
    PRIMARY KEY (store_id, term, start_date)
) STRICT;
CREATE INDEX settlements_by_window ON settlements (term, start_date);

CREATE TABLE settlement_card_fees (
    store_id      INTEGER NOT NULL,
    term          TEXT    NOT NULL,
    start_date    TEXT    NOT NULL,
    card_company  TEXT    NOT NULL CHECK (card_company IN ('K', 'H', 'S')),
    payment_count INTEGER NOT NULL CHECK (payment_count > 0),
    amount        INTEGER NOT NULL CHECK (amount >= 0),
    fee           INTEGER NOT NULL CHECK (fee >= 0),
    PRIMARY KEY (store_id, term, start_date, card_company),
    FOREIGN KEY (store_id, term, start_date) REFERENCES settlements
) STRICT;

CREATE TABLE settlement_products (
    store_id     INTEGER NOT NULL,
    term         TEXT    NOT NULL,
    start_date   TEXT    NOT NULL,
    product_id   INTEGER NOT NULL,
    product_name TEXT    NOT NULL,
    category     TEXT    NOT NULL CHECK (category IN ('MAIN_MENU', 'SUB_MENU', 'DRINK')),
    sale_count   INTEGER NOT NULL CHECK (sale_count > 0),
    sale_amount  INTEGER NOT NULL CHECK (sale_amount >= 0),
    PRIMARY KEY (store_id, term, start_date, product_id),
    FOREIGN KEY (store_id, term, start_date) REFERENCES settlements
) STRICT;
