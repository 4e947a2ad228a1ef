"""Train, evaluate, register and promote churn models."""
