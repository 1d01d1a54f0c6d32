from django.apps import AppConfig


class LabConfig(AppConfig):
    """Only `manage.py lab`: the lab is a development and test tool, so kvmcluster.settings installs this
    app in the embedded profile or when KVMCLUSTER_LAB=1, never in a production deployment by default.
    The package itself (lab.up(), LabHandle, ...) is importable either way; it has no models."""

    name = "lab"
    verbose_name = "Local two-hypervisor lab"
