from django.urls import path

from hosts.consumers import TopologyConsumer

websocket_urlpatterns = [
    path("ws/topology/", TopologyConsumer.as_asgi()),
]
