-- Which arm scored the row (`champion` or `challenger`), and whether its decision was only
-- recorded (`shadow`), not answered: a challenger in shadow mode, or the champion's own
-- decision for a customer the canary answered.
ALTER TABLE predictions ADD COLUMN role text NOT NULL DEFAULT 'champion';
ALTER TABLE predictions ADD COLUMN shadow integer NOT NULL DEFAULT 0;
