"""Shared fixtures. Each layer (unit, integration, lab, e2e) adds its own conftest."""
