"""Your own API tokens (any signed-in user): list with last use, create (shown once), revoke after a
confirmation. The page and `manage.py api_token` call the same services (accounts.tokens)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts import tokens
from accounts.audit import request_ip
from accounts.forms import ApiTokenForm


@require_http_methods(["GET", "POST"])
def token_list(request):
    form = ApiTokenForm(request.POST if request.method == "POST" else None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = tokens.api_token_create(
                user=request.user,
                days=form.cleaned_data["days"],
                note=form.cleaned_data["note"],
                actor=request.user,
                source_ip=request_ip(request),
            )
        except ValueError as err:
            form.add_error(None, str(err))
        else:
            form = ApiTokenForm()
    context = {"form": form, "tokens": tokens.api_tokens_of(request.user), "created": created}
    # No redirect after creating: the token's text exists only in this response (shown once).
    status = 400 if form.errors else 200
    response = render(request, "accounts/token_list.html", context, status=status)
    if created:
        response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def token_revoke(request, pk: str):
    token = next((t for t in tokens.api_tokens_of(request.user) if t.token_key == pk), None)
    if token is None:  # someone else's token, or gone: the same answer, so prefixes cannot be probed
        raise Http404("No such token of yours.")
    if request.method == "POST":
        tokens.api_token_revoke(
            prefix=token.token_key, user=request.user, actor=request.user, source_ip=request_ip(request)
        )
        messages.success(request, f"Token {token.token_key} revoked: requests with it are refused from now on.")
        return redirect("token-list")
    return render(request, "accounts/token_revoke_confirm.html", {"token": token})
