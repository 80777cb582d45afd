-- What the aggregation batch reads: paid trades by the instant they were paid. A DAY
-- window is a thirtieth of a month's trades, found through this index (with the store,
-- so a run for some stores filters them without visiting the table); a whole month is
-- read by a parallel sequential scan anyway.
CREATE INDEX trades_paid_by_time ON trades (paid_at) INCLUDE (store_id) WHERE status = 'PAID';

-- A line's name and category follow from its product almost always: without this the
-- planner multiplies their distinct counts, expects a group per line when product sales
-- are grouped by (store, product, name, category), and gives up the parallel partial
-- aggregation it uses for (store, product) alone.
CREATE STATISTICS trade_order_lines_product (ndistinct)
    ON product_id, product_name, category FROM trade_order_lines;
ANALYZE trade_order_lines;
