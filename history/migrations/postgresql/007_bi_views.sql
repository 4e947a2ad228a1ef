-- Views for BI tools (docs/bi.md lists every column): one row per customer with its latest
-- answered decision and newest outcome, and daily KPIs by tier, segment, action and group.
-- Rows recorded only (a shadow challenger, the champion beside a canary) are left out.
CREATE VIEW bi_customers AS
WITH latest AS (
    SELECT customer_id, scored_at, source, model_name, model_version, role, churn_probability,
           churn, risk_tier, decile, segment, action, expected_value, customer_value,
           experiment, treatment, held_back_action,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY scored_at DESC) AS newest
    FROM predictions
    WHERE NOT shadow AND customer_id IS NOT NULL
), outcome AS (
    SELECT customer_id, observed_at, churned,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY observed_at DESC) AS newest
    FROM outcomes
)
SELECT l.customer_id, (l.scored_at AT TIME ZONE 'UTC')::date AS day, l.scored_at AS last_scored_at, l.source, l.model_name,
       l.model_version, l.role, l.churn_probability, l.churn, l.risk_tier, l.decile, l.segment,
       l.action, l.expected_value, l.customer_value,
       l.churn_probability * l.customer_value AS revenue_at_risk,
       l.experiment, l.treatment, l.held_back_action,
       o.churned, o.observed_at AS outcome_observed_at
FROM latest l
LEFT JOIN outcome o ON o.customer_id = l.customer_id AND o.newest = 1
WHERE l.newest = 1;

-- A decision's realised outcome is the customer's newest one, when it was observed after it.
CREATE VIEW bi_daily_kpis AS
WITH outcome AS (
    SELECT customer_id, observed_at, churned,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY observed_at DESC) AS newest
    FROM outcomes
)
SELECT (p.scored_at AT TIME ZONE 'UTC')::date AS day, p.risk_tier, p.segment, p.action, p.treatment,
       COUNT(*) AS decisions,
       COUNT(DISTINCT p.customer_id) AS customers,
       AVG(p.churn_probability) AS predicted_churn_rate,
       SUM(CASE WHEN p.churn THEN 1 ELSE 0 END) AS predicted_churners,
       SUM(p.churn_probability * p.customer_value) AS revenue_at_risk,
       SUM(p.customer_value) AS customer_value,
       SUM(p.expected_value) AS expected_value,
       COUNT(o.churned) AS with_outcome,
       AVG(CASE WHEN o.churned THEN 1.0 WHEN NOT o.churned THEN 0.0 END) AS realised_churn_rate
FROM predictions p
LEFT JOIN outcome o
    ON o.customer_id = p.customer_id AND o.newest = 1 AND o.observed_at >= p.scored_at
WHERE NOT p.shadow
GROUP BY 1, 2, 3, 4, 5;
