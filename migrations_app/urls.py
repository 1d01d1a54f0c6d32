"""Guest migration pages under /migrations/, plus the Migrate form under /guests/<pk>/migrate/ and a host's
drain plan under /hypervisors/<pk>/drain-plan/, maintenance mode and /operations/<pk>/, and the balancer
under /balancer/."""

from django.urls import path

from migrations_app import views, views_balancer, views_operations, views_readiness

urlpatterns = [
    path("", views.migration_list, name="migration-list"),
    path("<int:pk>/", views.migration_detail, name="migration-detail"),
    path("<int:pk>/progress/", views.migration_progress, name="migration-progress"),
    path("<int:pk>/cancel/", views.migration_cancel, name="migration-cancel"),
    path("<int:pk>/bandwidth/", views.migration_bandwidth, name="migration-bandwidth"),
    path("<int:pk>/postcopy/", views.migration_postcopy, name="migration-postcopy"),
]

# mounted at the site root by kvmcluster/urls.py
guest_urlpatterns = [
    path("guests/<int:pk>/migrate/", views.migration_create, name="guest-migrate"),
    path("guests/<int:pk>/migrate/targets/", views.migration_targets, name="guest-migrate-targets"),
    path("hypervisors/readiness/", views_readiness.hypervisor_readiness, name="hypervisor-readiness"),
    path("hypervisors/<int:pk>/drain-plan/", views.hypervisor_drain_plan, name="hypervisor-drain-plan"),
    path("hypervisors/<int:pk>/maintenance/", views_operations.hypervisor_maintenance, name="hypervisor-maintenance"),
    path(
        "hypervisors/<int:pk>/maintenance/exit/",
        views_operations.hypervisor_maintenance_exit,
        name="hypervisor-maintenance-exit",
    ),
    path(
        "hypervisors/<int:pk>/maintenance/return/",
        views_operations.hypervisor_maintenance_return,
        name="hypervisor-maintenance-return",
    ),
    path("operations/<int:pk>/", views_operations.operation_detail, name="operation-detail"),
    path("operations/<int:pk>/progress/", views_operations.operation_progress, name="operation-progress"),
    path("operations/<int:pk>/pause/", views_operations.operation_pause, name="operation-pause"),
    path("operations/<int:pk>/resume/", views_operations.operation_resume, name="operation-resume"),
    path("operations/<int:pk>/cancel/", views_operations.operation_cancel, name="operation-cancel"),
]
# the load balancer (docs/balancing.md)
guest_urlpatterns += [
    path("balancer/proposals/", views_balancer.balancer_proposals, name="balancer-proposals"),
    path("balancer/proposals/<int:pk>/apply/", views_balancer.balancer_proposal_apply, name="balancer-proposal-apply"),
    path(
        "balancer/proposals/<int:pk>/dismiss/",
        views_balancer.balancer_proposal_dismiss,
        name="balancer-proposal-dismiss",
    ),
    path("balancer/policy/", views_balancer.balancer_policy_edit, name="balancer-policy"),
]
