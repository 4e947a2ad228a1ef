-- One row per scored customer, partitioned by day so that old days are dropped whole.
CREATE TABLE predictions (
    scored_at timestamptz NOT NULL,
    request_id text,
    client text,
    source text NOT NULL,
    customer_id text,
    model_name text NOT NULL,
    model_version text NOT NULL,
    churn_probability double precision NOT NULL,
    churn boolean NOT NULL,
    risk_tier text NOT NULL,
    decile smallint,
    segment text,
    action text,
    expected_value double precision,
    reasons jsonb,
    features jsonb
) PARTITION BY RANGE (scored_at);

-- One customer over time, newest first.
CREATE INDEX predictions_customer_time ON predictions (customer_id, scored_at DESC);

-- All rows in a time window: rows arrive in time order, so a BRIN index is tiny and cheap to keep.
CREATE INDEX predictions_time ON predictions USING brin (scored_at);

-- What really happened: did the customer churn, as observed at a time.
CREATE TABLE outcomes (
    customer_id text NOT NULL,
    observed_at timestamptz NOT NULL,
    churned boolean NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, observed_at)
);
