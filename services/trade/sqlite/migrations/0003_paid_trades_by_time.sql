-- What the aggregation batch reads: paid trades by the instant they were paid (a DAY
-- window is a thirtieth of a month's trades), with the store, so a run for some stores
-- filters them in the index.
CREATE INDEX trades_paid_by_time ON trades (paid_at, store_id) WHERE status = 'PAID';
