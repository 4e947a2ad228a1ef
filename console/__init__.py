"""The retention team's web console at /ui: server-rendered pages inside the service."""
