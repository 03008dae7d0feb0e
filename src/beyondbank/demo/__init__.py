"""The demo: its own SSO signing key, realistic generated data, and the command that serves it."""
