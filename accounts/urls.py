from django.urls import path

from accounts.views import audit, auth, tokens, users

urlpatterns = [
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("users/", users.user_list, name="user-list"),
    path("users/new/", users.user_create, name="user-create"),
    path("users/<int:pk>/role/", users.user_role_change, name="user-role"),
    path("users/<int:pk>/deactivate/", users.user_deactivate, name="user-deactivate"),
    path("users/<int:pk>/reactivate/", users.user_reactivate, name="user-reactivate"),
    path("api-tokens/", tokens.token_list, name="token-list"),
    path("api-tokens/<str:pk>/revoke/", tokens.token_revoke, name="token-revoke"),
    path("audit/", audit.audit_list, name="audit-list"),
    path("audit/export/", audit.audit_export, name="audit-export"),
    path("audit/<int:pk>/", audit.audit_detail, name="audit-detail"),
]
