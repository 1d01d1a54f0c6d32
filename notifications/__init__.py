"""Webhook and email notifications of cluster events (docs/notifications.md)."""
