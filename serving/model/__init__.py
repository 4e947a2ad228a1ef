"""The model being served: the holder of the served version, importing the champion, follow
mode, the request schema, readiness."""
