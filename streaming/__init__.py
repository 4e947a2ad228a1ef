"""Streaming scores on Kafka: customer events in, one decision each out, every event recorded
once in the prediction history (`python -m streaming`)."""
