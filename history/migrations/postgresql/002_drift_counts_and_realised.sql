-- Drift: how many recorded rows fell in each reference bin, per 5-minute bucket and model
-- version, counted by the writer as it writes the rows. A drift refresh sums a window of
-- buckets instead of scanning the rows themselves.
CREATE TABLE drift_counts (
    bucket timestamptz NOT NULL,
    model_version text NOT NULL,
    feature text NOT NULL,
    bin smallint NOT NULL,
    rows bigint NOT NULL,
    PRIMARY KEY (bucket, model_version, feature, bin)
);

-- Realised performance, as `python -m training performance` last computed it per version.
CREATE TABLE realised_performance (
    model_name text NOT NULL,
    model_version text NOT NULL,
    computed_at timestamptz NOT NULL,
    customers integer NOT NULL,
    roc_auc double precision,
    pr_auc double precision,
    top_decile_lift double precision,
    profit_per_customer double precision,
    PRIMARY KEY (model_name, model_version)
);
