"""`python -m scoring spark`: a whole customer base scored on Spark with the champion's runtime."""
