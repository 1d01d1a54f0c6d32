"""The deployment guide works as written: the documented units' commands behind the documented nginx site.

What runs is read from deploy/: the web unit's ExecStart (two instances, as the guide enables them), the
worker unit's ExecStart, the environment file's settings and the nginx site, with only the machine-
specific parts swapped for this test's (ports, paths, the certificate, the host name 127.0.0.1). Not
systemd itself: the units' commands, started the way systemd would start them. Then Chromium signs in
over https through the proxy, the topology's socket opens through it (wss, upgraded by nginx, accepted
by the origin check because the trusted proxy says https), and a change pushed by another process
through Redis reaches the page without a reload. Production profile only: the guide deploys on
PostgreSQL + Redis.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.libvirt_nodes import NodeDomain, write_node
from tests.servers import (
    CHROMIUM,
    PYTHON,
    ROOT,
    chromium,
    drop_postgres,
    free_port,
    stop_group,
    throwaway_postgres,
)

pytestmark = pytest.mark.skipif(
    not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")),
    reason="the deployment guide is for the production profile (PostgreSQL + Redis)",
)

DEPLOY = ROOT / "deploy"
PASSWORD = "deploy-password-42"


def unit_command(unit: str, instance: str = "") -> list[str]:
    """The unit's ExecStart as systemd would run it from a checkout at ROOT."""
    text = (DEPLOY / "systemd" / unit).read_text()
    line = re.search(r"^ExecStart=(.+)$", text, re.M).group(1)
    return shlex.split(line.replace("/opt/kvmcluster", str(ROOT)).replace("%i", instance))


def documented_env(**overrides: str) -> dict[str, str]:
    """The environment file's settings, each one overridden for this machine (none may be left as written)."""
    documented = dict(
        line.split("=", 1)
        for line in (DEPLOY / "kvmcluster.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    missing = set(documented) - set(overrides)
    assert not missing, f"the test must set every documented variable: {missing}"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_SETTINGS"))}
    return {**base, **documented, **overrides, "DJANGO_SETTINGS_MODULE": "kvmcluster.settings"}


def nginx_site(web_ports: list[int], https_port: int, http_port: int, cert: Path, key: Path, static: Path) -> str:
    site = (DEPLOY / "nginx" / "kvmcluster.conf").read_text()
    upstreams = "".join(f"    server 127.0.0.1:{p};\n" for p in web_ports)
    site = re.sub(r"upstream kvmcluster_web \{\n(?:    server .*\n)+", f"upstream kvmcluster_web {{\n{upstreams}", site)
    site = re.sub(r"^\s*listen \[::\]:.*\n", "", site, flags=re.M)
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    site = site.replace("server_name dashboard.example.org;", "server_name 127.0.0.1;")
    site = site.replace("/etc/ssl/kvmcluster/fullchain.pem", str(cert)).replace(
        "/etc/ssl/kvmcluster/privkey.pem", str(key)
    )
    return site.replace("/var/www/kvmcluster/static/", f"{static}/")


def nginx_main(site: Path, run_dir: Path) -> str:
    """What Debian's /etc/nginx/nginx.conf provides around a site, pointed at this test's directory. The
    workers run as root here only because the test's directories are private (0700) to root."""
    temp = "\n".join(
        f"    {kind}_temp_path {run_dir}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""user root;
worker_processes 1;
pid {run_dir}/nginx.pid;
error_log {run_dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log {run_dir}/access.log;
{temp}
    include {site};
}}
"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("deploy")
    if not shutil.which("nginx") or not Path(CHROMIUM).exists():
        pytest.fail("nginx and chromium are installed by scripts/install.sh")
    data, static, run_dir = tmp_path / "data", tmp_path / "static", tmp_path / "nginx"
    for d in (data, static, run_dir):
        d.mkdir()
    db_url = throwaway_postgres(os.environ["DATABASE_URL"], tag="deploy")
    web_ports, https_port, http_port = [free_port(), free_port()], free_port(), free_port()
    env = documented_env(
        DATABASE_URL=db_url,
        REDIS_URL=os.environ["REDIS_URL"],
        KVMCLUSTER_SECRET_KEY=secrets.token_urlsafe(50),
        KVMCLUSTER_AUDIT_KEY=secrets.token_urlsafe(50),
        KVMCLUSTER_ALLOWED_HOSTS="127.0.0.1",
        KVMCLUSTER_TRUSTED_PROXIES="127.0.0.1",
        KVMCLUSTER_DATA_DIR=str(data),
        KVMCLUSTER_STATIC_ROOT=str(static),
    )
    env["KVMCLUSTER_CHANNEL_PREFIX"] = f"kvmcluster-deploy-{os.getpid()}"

    def manage(*args: str, stdin: str | None = None) -> str:
        """Run a manage.py command as an admin would; returns the last line it printed."""
        done = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"manage.py {args}: {done.stdout}\n{done.stderr}"
        return (done.stdout.strip().splitlines() or [""])[-1]

    # The guide's install steps, in its order.
    manage("migrate", "--noinput")
    manage("collectstatic", "--noinput")
    host = write_node(tmp_path / "hv-a.xml", [NodeDomain("web01")], cpus=4)
    seeded = subprocess.run(
        [PYTHON, str(ROOT / "tests/e2e/seed.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        input=json.dumps(
            {
                "users": [{"username": "vera", "password": PASSWORD, "role": "viewer"}],
                "hypervisors": [{"name": "hv-a", "uri": host, "storage": []}],
            }
        ),
    )
    assert seeded.returncode == 0, seeded.stderr
    hypervisor_id = json.loads(seeded.stdout.strip().splitlines()[-1])["hypervisors"]["hv-a"]

    cert, key = run_dir / "cert.pem", run_dir / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    site = run_dir / "kvmcluster.conf"
    site.write_text(nginx_site(web_ports, https_port, http_port, cert, key, static))
    main = run_dir / "nginx.conf"
    main.write_text(nginx_main(site, run_dir))
    tls = ssl.create_default_context(cafile=str(cert))
    checked = subprocess.run(["nginx", "-t", "-c", str(main)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr

    procs = []
    logs = []
    try:
        commands = [unit_command("kvmcluster-web@.service", str(p)) for p in web_ports]
        commands += [unit_command("kvmcluster-worker.service"), ["nginx", "-g", "daemon off;", "-c", str(main)]]
        for i, cmd in enumerate(commands):
            log = open(tmp_path / f"proc{i}.log", "w")  # noqa: SIM115 (closed below)
            logs.append(log)
            procs.append(
                subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            )
        base = f"https://127.0.0.1:{https_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/login/", verify=tls, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            dead = [p.args for p in procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                out = "\n".join((tmp_path / f"proc{i}.log").read_text()[-2000:] for i in range(len(procs)))
                pytest.fail(f"the deployment did not come up (exited: {dead}):\n{out}")
            time.sleep(0.3)
        yield {
            "base": base,
            "http": f"http://127.0.0.1:{http_port}",
            "tls": tls,
            "manage": manage,
            "hypervisor_id": hypervisor_id,
            "run_dir": run_dir,
        }
    finally:
        for p in procs:
            stop_group(p, timeout=20)
        for log in logs:
            log.close()
        drop_postgres(db_url)


def test_the_guide_serves_https_static_files_and_redirects_plain_http(deployment):
    css = httpx.get(f"{deployment['base']}/static/css/app.css", verify=deployment["tls"])
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    plain = httpx.get(f"{deployment['http']}/login/", follow_redirects=False)
    assert plain.status_code == 301 and plain.headers["location"].startswith("https://127.0.0.1")
    login = httpx.get(f"{deployment['base']}/login/", verify=deployment["tls"])
    assert "strict-transport-security" in login.headers  # Django sees https through the trusted proxy


def test_a_viewer_signs_in_through_the_proxy_and_the_topology_stays_live(deployment):
    with chromium() as browser:
        context = browser.new_context(base_url=deployment["base"], ignore_https_errors=True)
        page = context.new_page()
        page.goto("/")
        page.get_by_label("Username").fill("vera")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Cluster topology")).to_be_visible()
        session = next(c for c in context.cookies() if c["name"] == "sessionid")
        assert session["secure"], "the session cookie must be Secure behind https"
        # The socket opens through nginx (wss), so the page says it is live.
        expect(page.locator("[data-live-status]")).to_have_attribute("data-live", "on", timeout=15_000)
        page.evaluate("window.__deployMarker = 'no reload'")
        # Another process (as a worker would) renames the host and pushes the change through Redis.
        hv = deployment["hypervisor_id"]
        deployment["manage"](
            "shell",
            "-c",
            "from hosts.models import Hypervisor; from hosts import events; "
            f"Hypervisor.objects.filter(pk={hv}).update(name='hv-renamed'); events.hypervisors_changed([{hv}])",
        )
        expect(page.locator(f"#hypervisor-{hv}-card")).to_contain_text("hv-renamed", timeout=15_000)
        assert page.evaluate("window.__deployMarker") == "no reload"
    # The sign-in's audit row has the browser's address as the proxy passed it on.
    rows = deployment["manage"](
        "shell",
        "-c",
        "from accounts.models import AuditEvent; "
        "print(list(AuditEvent.objects.filter(action='auth.login').values_list('actor_username', 'source_ip')))",
    )
    assert rows == "[('vera', '127.0.0.1')]"


def test_an_address_sent_by_the_client_is_not_believed(deployment):
    """nginx replaces X-Forwarded-For with the peer it saw, so a client cannot choose the audited address."""
    base = deployment["base"]
    with httpx.Client(base_url=base, verify=deployment["tls"]) as client:
        form = client.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        refused = client.post(
            "/login/",
            data={"csrfmiddlewaretoken": token, "username": "vera", "password": "wrong-password"},
            headers={"X-Forwarded-For": "127.0.0.99", "Origin": base, "Referer": f"{base}/login/"},
        )
    assert refused.status_code == 200 and "enter a correct username and password" in refused.text.lower()
    out = deployment["manage"](
        "shell",
        "-c",
        "from accounts.models import AuditEvent; "
        "print(list(AuditEvent.objects.filter(action='auth.login_failed').values_list('source_ip', flat=True)))",
    )
    assert out == "['127.0.0.1']"
