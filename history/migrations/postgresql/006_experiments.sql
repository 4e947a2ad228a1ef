-- A retention experiment's group for each decision (churn/experiment.py): the experiment's
-- name, `treated` or `control`, and for a held-back customer the action it would have had.
-- All three stay empty for a customer in no experiment.
ALTER TABLE predictions ADD COLUMN experiment text;
ALTER TABLE predictions ADD COLUMN treatment text;
ALTER TABLE predictions ADD COLUMN held_back_action text;

-- The uplift report reads one experiment's customers.
CREATE INDEX predictions_experiment ON predictions (experiment, customer_id)
    WHERE experiment IS NOT NULL;
