from django.urls import path

from migrations_app import consumers

websocket_urlpatterns = [
    path("ws/migrations/active/", consumers.ActiveMigrationsConsumer.as_asgi(), name="ws-migrations-active"),
    path("ws/migrations/<int:pk>/", consumers.MigrationConsumer.as_asgi(), name="ws-migration"),
    path("ws/operations/<int:pk>/", consumers.OperationConsumer.as_asgi(), name="ws-operation"),
]
