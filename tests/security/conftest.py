import pytest

from hosts.drivers import libvirt as driver


@pytest.fixture(autouse=True)
def _fresh_libvirt_connections():
    """As in tests/integration: test:/// hosts are loaded from their file on open, so never reuse."""
    driver.close_all()
    yield
    driver.close_all()
