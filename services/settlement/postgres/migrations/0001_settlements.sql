-- What the aggregation batch writes: product sales and settlements per store, term and
-- window (stored under its first local date), each window replaced whole by a run.
-- Closed sets are enum types named after the service, so services can share a database.

CREATE TYPE settlement_term AS ENUM ('DAY', 'WEEK', 'MONTH');
CREATE TYPE settlement_category AS ENUM ('MAIN_MENU', 'SUB_MENU', 'DRINK');
CREATE TYPE settlement_card_company AS ENUM ('K', 'H', 'S');

-- The stores a window of product sales was aggregated for: one that sold nothing then
-- has its window here and no rows in product_sales (zero, not "not aggregated").
CREATE TABLE product_sales_windows (
    store_id   BIGINT          NOT NULL,
    term       settlement_term NOT NULL,
    start_date DATE            NOT NULL,
    end_date   DATE            NOT NULL CHECK (end_date > start_date),
    PRIMARY KEY (store_id, term, start_date)
);
-- A run replaces a window for many stores at once.
CREATE INDEX product_sales_windows_by_window ON product_sales_windows (term, start_date);

CREATE TABLE product_sales (
    store_id     BIGINT              NOT NULL,
    term         settlement_term     NOT NULL,
    start_date   DATE                NOT NULL,
    product_id   BIGINT              NOT NULL,
    product_name TEXT                NOT NULL,
    category     settlement_category NOT NULL,
    sale_count   BIGINT              NOT NULL CHECK (sale_count > 0),
    sale_amount  BIGINT              NOT NULL CHECK (sale_amount >= 0),
    PRIMARY KEY (store_id, term, start_date, product_id),
    FOREIGN KEY (store_id, term, start_date) REFERENCES product_sales_windows
);

CREATE TABLE settlements (
    store_id    BIGINT          NOT NULL,
    term        settlement_term NOT NULL,
    start_date  DATE            NOT NULL,
    end_date    DATE            NOT NULL CHECK (end_date > start_date),
    revenue     BIGINT          NOT NULL CHECK (revenue >= 0),
    fee         BIGINT          NOT NULL CHECK (fee >= 0 AND fee <= revenue),
    trade_count BIGINT          NOT NULL CHECK (trade_count >= 0),
    PRIMARY KEY (store_id, term, start_date)
);
CREATE INDEX settlements_by_window ON settlements (term, start_date);

CREATE TABLE settlement_card_fees (
    store_id      BIGINT                  NOT NULL,
    term          settlement_term         NOT NULL,
    start_date    DATE                    NOT NULL,
    card_company  settlement_card_company NOT NULL,
    payment_count BIGINT                  NOT NULL CHECK (payment_count > 0),
    amount        BIGINT                  NOT NULL CHECK (amount >= 0),
    fee           BIGINT                  NOT NULL CHECK (fee >= 0),
    PRIMARY KEY (store_id, term, start_date, card_company),
    FOREIGN KEY (store_id, term, start_date) REFERENCES settlements
);

CREATE TABLE settlement_products (
    store_id     BIGINT              NOT NULL,
    term         settlement_term     NOT NULL,
    start_date   DATE                NOT NULL,
    product_id   BIGINT              NOT NULL,
    product_name TEXT                NOT NULL,
    category     settlement_category NOT NULL,
    sale_count   BIGINT              NOT NULL CHECK (sale_count > 0),
    sale_amount  BIGINT              NOT NULL CHECK (sale_amount >= 0),
    PRIMARY KEY (store_id, term, start_date, product_id),
    FOREIGN KEY (store_id, term, start_date) REFERENCES settlements
);
