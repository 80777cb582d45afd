-- PostgreSQL's own types: the creation time becomes timestamptz, and the grade an
-- unfinished signup asked for is kept by name (it was the API's enum number).

ALTER TABLE users
    ALTER COLUMN created_at TYPE timestamptz USING to_timestamp(created_at / 1000.0),
    ALTER COLUMN pending_pos_grade TYPE text USING CASE pending_pos_grade
        WHEN 1 THEN 'BRONZE' WHEN 2 THEN 'SILVER' WHEN 3 THEN 'GOLD' END,
    ALTER COLUMN pending_settlement_day TYPE integer;
ALTER TABLE users ADD CONSTRAINT users_pending_pos_grade_check
    CHECK (pending_pos_grade IN ('BRONZE', 'SILVER', 'GOLD'));
-- A pending store request is all there or not at all.
ALTER TABLE users ADD CONSTRAINT users_pending_store_complete
    CHECK ((pending_store_name IS NULL) = (pending_pos_grade IS NULL)
       AND (pending_store_name IS NULL) = (pending_settlement_day IS NULL));
