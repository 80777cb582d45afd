-- PostgreSQL's own types: instants become timestamptz, closed sets become enums (named
-- after the service, so several services can share one database), and a release that
-- arrived before its reservation (a tombstone) has no store instead of store 0.

CREATE TYPE store_pos_grade AS ENUM ('BRONZE', 'SILVER', 'GOLD');
CREATE TYPE store_product_category AS ENUM ('MAIN_MENU', 'SUB_MENU', 'DRINK');
CREATE TYPE store_reservation_status AS ENUM ('RESERVED', 'CONFIRMED', 'RELEASED');

ALTER TABLE stores DROP CONSTRAINT IF EXISTS stores_pos_grade_check;
ALTER TABLE stores
    ALTER COLUMN pos_grade TYPE store_pos_grade USING pos_grade::store_pos_grade,
    ALTER COLUMN created_at TYPE timestamptz USING to_timestamp(created_at / 1000.0);

ALTER TABLE devices
    ALTER COLUMN revoked_at TYPE timestamptz USING to_timestamp(revoked_at / 1000.0),
    ALTER COLUMN created_at TYPE timestamptz USING to_timestamp(created_at / 1000.0);

ALTER TABLE products DROP CONSTRAINT IF EXISTS products_category_check;
ALTER TABLE products
    ALTER COLUMN category TYPE store_product_category USING category::store_product_category,
    ALTER COLUMN deleted_at TYPE timestamptz USING to_timestamp(deleted_at / 1000.0),
    ALTER COLUMN created_at TYPE timestamptz USING to_timestamp(created_at / 1000.0),
    ALTER COLUMN updated_at TYPE timestamptz USING to_timestamp(updated_at / 1000.0);

ALTER TABLE product_history
    ALTER COLUMN at TYPE timestamptz USING to_timestamp(at / 1000.0);

ALTER TABLE stock_reservations DROP CONSTRAINT IF EXISTS stock_reservations_status_check;
ALTER TABLE stock_reservations
    ALTER COLUMN status TYPE store_reservation_status USING status::store_reservation_status,
    ALTER COLUMN store_id DROP NOT NULL,
    ALTER COLUMN created_at TYPE timestamptz USING to_timestamp(created_at / 1000.0),
    ALTER COLUMN updated_at TYPE timestamptz USING to_timestamp(updated_at / 1000.0);
UPDATE stock_reservations SET store_id = NULL WHERE store_id = 0;
-- A reservation holds stock of its store; only a tombstone has none.
ALTER TABLE stock_reservations ADD CONSTRAINT stock_reservations_store_or_tombstone
    CHECK (store_id IS NOT NULL OR status = 'RELEASED');

ALTER TABLE stock_reservation_lines
    ALTER COLUMN category TYPE store_product_category USING category::store_product_category;
