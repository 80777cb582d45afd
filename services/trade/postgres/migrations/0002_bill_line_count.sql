-- How many order lines each bill holds, kept with its total in the same statement, so
-- the cap on a bill's size is checked without counting its lines on every order.
ALTER TABLE trades ADD COLUMN line_count INTEGER NOT NULL DEFAULT 0 CHECK (line_count >= 0);
UPDATE trades t SET line_count = (
    SELECT count(*) FROM trade_order_lines l JOIN trade_orders o ON o.id = l.order_id
    WHERE o.trade_id = t.id
);
