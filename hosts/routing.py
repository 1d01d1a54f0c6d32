from django.urls import path

from hosts.consumers import GuestLoadConsumer, HypervisorLoadConsumer, TopologyConsumer

websocket_urlpatterns = [
    path("ws/topology/", TopologyConsumer.as_asgi()),
    path("ws/hypervisors/<int:pk>/load/", HypervisorLoadConsumer.as_asgi()),
    path("ws/guests/<int:pk>/load/", GuestLoadConsumer.as_asgi()),
]
