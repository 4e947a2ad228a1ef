-- Times are UTC text, YYYY-MM-DDTHH:MM:SS.ffffffZ, so they sort as they compare.
CREATE TABLE predictions (
    scored_at text NOT NULL,
    request_id text,
    client text,
    source text NOT NULL,
    customer_id text,
    model_name text NOT NULL,
    model_version text NOT NULL,
    churn_probability real NOT NULL,
    churn integer NOT NULL,
    risk_tier text NOT NULL,
    decile integer,
    segment text,
    action text,
    expected_value real,
    reasons text,
    features text
);

CREATE INDEX predictions_customer_time ON predictions (customer_id, scored_at DESC);

CREATE INDEX predictions_time ON predictions (scored_at);

CREATE TABLE outcomes (
    customer_id text NOT NULL,
    observed_at text NOT NULL,
    churned integer NOT NULL,
    loaded_at text NOT NULL,
    PRIMARY KEY (customer_id, observed_at)
);
