CREATE TABLE drift_counts (
    bucket text NOT NULL,
    model_version text NOT NULL,
    feature text NOT NULL,
    bin integer NOT NULL,
    rows integer NOT NULL,
    PRIMARY KEY (bucket, model_version, feature, bin)
);

CREATE TABLE realised_performance (
    model_name text NOT NULL,
    model_version text NOT NULL,
    computed_at text NOT NULL,
    customers integer NOT NULL,
    roc_auc real,
    pr_auc real,
    top_decile_lift real,
    profit_per_customer real,
    PRIMARY KEY (model_name, model_version)
);
