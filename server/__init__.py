"""The Starlette application, settings, authentication, request context and CLI."""
