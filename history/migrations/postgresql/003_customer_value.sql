-- What keeping each scored customer is worth, for revenue at risk in the console.
ALTER TABLE predictions ADD COLUMN customer_value double precision;
