"""MLflow registry webhooks → Jenkins: register the webhook, and relay signed events."""
