"""The model's runtime: everything a registered churn model needs at prediction time.

Every registered version ships this package, and only this one, as its code.
"""
