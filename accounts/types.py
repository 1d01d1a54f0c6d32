"""Types shared by the services of every app."""

from typing import TypeAlias

from django.contrib.auth.models import AnonymousUser, User

# Who acts in a service call: the signed-in user (request.user), or None for the system itself.
Actor: TypeAlias = User | AnonymousUser | None
