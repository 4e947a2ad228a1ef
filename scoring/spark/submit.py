"""The file spark-submit runs: `spark-submit --py-files churn-project.zip scoring/spark/submit.py
--data ... --out ...` takes the options of `python -m scoring spark`."""

from cli.runner import run
from scoring.spark.command import app

if __name__ == "__main__":
    run(app)
