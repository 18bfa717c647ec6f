"""Project-wide building blocks shared by every app: the error base and the rate-limit
counter. Nothing here imports an app."""
