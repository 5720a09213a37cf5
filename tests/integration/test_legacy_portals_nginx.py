"""The old portals on a real nginx: the role's templates rendered as Ansible renders them, the
three modes, and every mapped path answering 301 with the Location the registry's mapping says."""

from __future__ import annotations

import http.client
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest
from ansible.plugins.filter.core import FilterModule

from exporters.govops_prober.config import SYSTEMS, parse_config
from exporters.govops_prober.prober import Prober
from exporters.govops_prober.server import Exporter
from govops.registry.geography import merged_from
from govops.registry.legacy_portals import legacy_portal_domain, national_target, nginx_rules

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles/legacy_portals"
NATIONAL = "https://national-portal"
OLD = merged_from("ho_chi_minh")  # three old provinces: Bình Dương, Bà Rịa - Vũng Tàu, HCMC
PATHS = [
    "/",
    "/index.html",
    "/tim-kiem?keyword=khai+sinh&trang=2",
    "/tra-cuu-ho-so?ma=H79.22-250628-0001",
    "/thanh-toan?token=abc",
    "/thu-tuc-hanh-chinh/1.001234",
    "/thu-tuc-hanh-chinh/1.001234?x=1",
    "/thu-tuc-hanh-chinh?linh-vuc=tu-phap",
    "/thu-tuc-hanh-chinh/a/b",
    "/thu-tuc-hanh-chinh/%0d%0aSet-Cookie:%20x=1",
    "/dvc/nop-ho-so/2.000908",
    "/dich-vu-cong/DV-01",
    "/tin-tuc/2025/06/sap-nhap",
    "/tin-tucx/1",
    "/khong-biet?a=1",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def render(template: str, dest: Path, **variables: object) -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLE / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,  # as Ansible's template module does
    )
    env.filters.update(FilterModule().filters())
    dest.write_text(env.get_template(template).render(**variables), encoding="utf-8")


class Nginx:
    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.mode_conf = root / "conf/mode.conf"
        self.proc: subprocess.Popen[bytes] | None = None

    def set_mode(self, mode: str) -> None:
        render("mode.conf.j2", self.mode_conf, legacy_portals__mode=mode)
        if self.proc is not None:
            self.proc.send_signal(signal.SIGHUP)
            # a reload is done when new workers answer in the new mode for every domain, three
            # rounds running (an old worker may still take a connection or two meanwhile)
            deadline, rounds = time.monotonic() + 10, 0
            while time.monotonic() < deadline:
                if all(self.mode_of(legacy_portal_domain(lp)) == mode for lp in OLD):
                    rounds += 1
                    if rounds == 3:
                        return
                else:
                    rounds = 0
                time.sleep(0.1)
            raise AssertionError(f"nginx did not reload into {mode}")

    def get(self, domain: str, target: str) -> tuple[int, http.client.HTTPMessage, str]:
        """One request with SNI and Host naming the old domain, as a citizen's browser sends."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # a throwaway self-signed certificate
        request = f"GET {target} HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n"
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock,
            ctx.wrap_socket(sock, server_hostname=domain) as tls,
        ):
            tls.sendall(request.encode())
            resp = http.client.HTTPResponse(tls)  # type: ignore[arg-type]
            resp.begin()
            body = resp.read().decode("utf-8", "replace")
        return resp.status, resp.headers, body

    def mode_of(self, domain: str) -> str:
        status, _, body = self.get(domain, "/")
        if status == 301:
            return "redirect"
        return "notice" if "ngừng tiếp nhận" in body else "open"


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Nginx]:
    conf, www = tmp_path / "conf", tmp_path / "www"
    conf.mkdir()
    www.mkdir()
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-subj", "/CN=front", "-days", "1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(conf / "server.key"), "-out", str(conf / "server.crt"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    port = free_port()
    domains = [
        {"old_code": lp.old_code, "old_name": lp.old_name, "domain": legacy_portal_domain(lp)}
        for lp in OLD
    ]
    variables = {
        "govops_province": {"name": "Thành phố Hồ Chí Minh"},
        "legacy_portals_domains": domains,
        "legacy_portals_paths": nginx_rules(),
        "legacy_portals_national_url": NATIONAL,
        "legacy_portals_redirect_from": "2025-06-28",
        "legacy_portals_listen": [f"127.0.0.1:{port}"],
        "legacy_portals_certificate_path": str(conf / "server.crt"),
        "legacy_portals_private_key_path": str(conf / "server.key"),
        "legacy_portals_dir": str(conf),
        "legacy_portals_www": str(www),
    }
    render("legacy-portals.conf.j2", conf / "site.conf", **variables)
    for d in domains:
        for page in ("open", "notice"):
            render(
                f"{page}.html.j2", www / f"{d['old_code']}-{page}.html", item=[d, page], **variables
            )
    (conf / "nginx.conf").write_text(
        f"""user root;
daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 64; }}
http {{
    default_type text/html;
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    # nginx_tls's site first, as sites-enabled/govops.conf sorts before legacy-portals.conf
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name front;
        ssl_certificate {conf}/server.crt;
        ssl_certificate_key {conf}/server.key;
        return 404;
    }}
    include {conf}/site.conf;
}}
"""
    )
    server = Nginx(tmp_path, port)
    server.set_mode("open")
    check = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(conf / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    server.proc = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(conf / "nginx.conf")])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.proc.poll() is not None:
                raise AssertionError((tmp_path / "error.log").read_text()) from None
            time.sleep(0.1)
    try:
        yield server
    finally:
        server.proc.terminate()
        server.proc.wait(timeout=10)


def test_open_then_notice_then_redirect_with_the_registrys_locations(nginx: Nginx) -> None:
    for lp in OLD:
        status, headers, body = nginx.get(legacy_portal_domain(lp), "/thu-tuc-hanh-chinh/1.0012")
        assert status == 200 and "STAND-IN" in body and lp.old_name in body
        assert headers["X-Govops-Legacy-Portal"] == lp.old_code

    nginx.set_mode("notice")
    # the notice: 200 on every path, naming the old province and linking the national portal
    for target in ("/", "/tim-kiem?keyword=x", "/khong-biet"):
        status, headers, body = nginx.get(legacy_portal_domain(OLD[1]), target)
        assert status == 200 and headers["Cache-Control"] == "no-store"
        assert OLD[1].old_name in body and f'href="{NATIONAL}/p/home/dvc-trang-chu.html"' in body

    nginx.set_mode("redirect")
    for lp in OLD:
        for target in PATHS:
            status, headers, _ = nginx.get(legacy_portal_domain(lp), target)
            assert status == 301, (lp.old_code, target)
            assert headers["Location"] == NATIONAL + national_target(target), target
            assert headers["Set-Cookie"] is None

    # rollback: back to the notice
    nginx.set_mode("notice")
    assert nginx.mode_of(legacy_portal_domain(OLD[2])) == "notice"


def test_a_domain_of_another_province_is_not_served(nginx: Nginx) -> None:
    nginx.set_mode("redirect")
    status, headers, _ = nginx.get("dichvucong.hagiang.gov.vn", "/")
    assert headers["X-Govops-Legacy-Portal"] is None and status == 404


def test_the_prober_sees_every_old_domain_redirected_or_not(nginx: Nginx) -> None:
    front = f"https://127.0.0.1:{nginx.port}"
    config = parse_config(
        {
            "environment": "test",
            "counterparts": {"portal": NATIONAL},
            "ca_file": str(nginx.root / "conf/server.crt"),  # the prober checks the front's TLS
            "legacy_portal_location": NATIONAL + national_target("/"),
            "provinces": {
                "ho_chi_minh": {
                    "systems": {s: front for s in SYSTEMS},
                    "communes": ["26734"],
                    "agency_from": "000.00.79.H29",
                    "agency_to": "000.00.79.H29",
                    "legacy_portals": {lp.old_code: legacy_portal_domain(lp) for lp in OLD},
                }
            },
        }
    )
    prober = Prober(config)
    try:
        exporter = Exporter(prober)

        def samples() -> dict[str, float]:
            args = {"target": ["ho_chi_minh"], "module": ["legacy_portal_redirect"]}
            status, _, body = exporter.probe(args, "20")
            assert status == 200
            lines = [x for x in body.decode().splitlines() if x and not x.startswith("#")]
            return {k: float(v) for k, _, v in (x.rpartition(" ") for x in lines)}

        def redirect_ok(code: str) -> str:
            return (
                f'govops_legacy_portal_redirect_ok{{old_province="{code}",province="ho_chi_minh"}}'
            )

        success = (
            'govops_probe_success{check="legacy_portal_redirect",'
            'province="ho_chi_minh",system="procedures"}'
        )
        nginx.set_mode("notice")
        seen = samples()
        assert seen[success] == 0 and all(seen[redirect_ok(lp.old_code)] == 0 for lp in OLD)
        nginx.set_mode("redirect")
        # As Prometheus would see it on its next scrapes: a keep-alive connection the prober
        # held to an old worker may answer once more in the old mode, never for long.
        deadline = time.monotonic() + 10
        seen = samples()
        while seen[success] != 1 and time.monotonic() < deadline:
            time.sleep(0.5)
            seen = samples()
        assert seen[success] == 1 and all(seen[redirect_ok(lp.old_code)] == 1 for lp in OLD)
    finally:
        prober.close()
