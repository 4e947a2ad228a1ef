"""The MLflow registry as training, serving and the webhook relay all see it."""
