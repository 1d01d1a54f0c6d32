import pytest

from hosts.drivers import libvirt_driver


@pytest.fixture(autouse=True)
def _fresh_libvirt_connections():
    """As in tests/integration: test:/// hosts are loaded from their file on open, so never reuse."""
    libvirt_driver.close_all()
    yield
    libvirt_driver.close_all()
