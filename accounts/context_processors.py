"""Template context: `user_role` ("admin" / "operator" / "viewer" / "") for the nav and badges."""

from django.utils.functional import SimpleLazyObject

from accounts.permissions import user_role


def roles(request):
    # Lazy: pages that never show the role pay no query for it.
    return {"user_role": SimpleLazyObject(lambda: user_role(getattr(request, "user", None)))}
