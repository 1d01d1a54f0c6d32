from django.urls import path

from notifications import views

urlpatterns = [
    path("", views.target_list, name="notification-target-list"),
    path("new/", views.target_create, name="notification-target-create"),
    path("<int:pk>/", views.target_detail, name="notification-target-detail"),
    path("<int:pk>/edit/", views.target_edit, name="notification-target-edit"),
    path("<int:pk>/delete/", views.target_delete, name="notification-target-delete"),
]
