"""The summary of a Spark job's output, counted by Spark in one pass over the written files."""

from __future__ import annotations

from pyspark.sql import SparkSession

from scoring.summary import Summary

# One scan: totals, then counts by tier, segment, decile, action and rejection reason. A reason
# is the column and what is wrong, as in `python -m scoring` ("tenure: not a number").
SUMMARY_QUERY = """
SELECT risk_tier, segment, CAST(decile AS INT) AS decile, action, reason,
       GROUPING_ID(risk_tier, segment, decile, action, reason) AS level,
       COUNT(*) AS rows, SUM(CAST(churn AS INT)) AS churners,
       SUM(IF(churn, customer_value, 0D)) AS at_risk, SUM(expected_value) AS expected_value
FROM (
  SELECT *, CASE WHEN error IS NULL THEN NULL
                 WHEN error LIKE '%is not a number'
                 THEN CONCAT(SPLIT_PART(error, ':', 1), ': not a number')
                 ELSE error END AS reason
  FROM scored
)
GROUP BY GROUPING SETS ((), (risk_tier), (segment), (decile), (action), (reason))
"""
# GROUPING_ID bit order follows the column list: a bit is 1 where the column is rolled up.
TOTAL, BY_TIER, BY_SEGMENT, BY_DECILE, BY_ACTION, BY_REASON = 31, 15, 23, 27, 29, 30


def summary_of(spark: SparkSession, path: str, source: str) -> Summary:
    spark.read.parquet(path).createOrReplaceTempView("scored")
    summary = Summary(source=source)
    for row in spark.sql(SUMMARY_QUERY).collect():
        level = row["level"]
        if level == TOTAL:
            continue
        if level == BY_REASON:
            if row["reason"] is not None:
                summary.rejections[row["reason"]] = row["rows"]
                summary.rejected += row["rows"]
            else:
                summary.scored = row["rows"]
                summary.predicted_churners = row["churners"] or 0
                summary.revenue_at_risk = row["at_risk"] or 0.0
                summary.total_expected_value = row["expected_value"] or 0.0
            continue
        column, counter = {
            BY_TIER: ("risk_tier", summary.by_tier),
            BY_SEGMENT: ("segment", summary.by_segment),
            BY_DECILE: ("decile", summary.by_decile),
            BY_ACTION: ("action", summary.by_action),
        }[level]
        if row[column] is not None:
            counter[str(row[column])] = row["rows"]
    return summary
