"""The HTTP side of /predict and /explain: the lane ahead of BentoML's app, the endpoints,
batching, body limits and error bodies."""
