"""Everything the BentoML service needs besides `service.py` itself."""
