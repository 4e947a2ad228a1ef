ALTER TABLE predictions ADD COLUMN customer_value real;
