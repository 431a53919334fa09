"""What the .ci scripts share: a JSON HTTP client for cellqc, a free port,
the PostgreSQL server binaries. Standard library only."""

import datetime
import json
import os
import socket
import time
import urllib.error
import urllib.request

PASSWORD = "cellqc-demo-pass"


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    """A JSON client. Connection failures raise OSError."""

    def __init__(self, base):
        self.base = base

    def call(self, method, path, body=None, token=None, key=None, timeout=30, headers_out=None):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        if key:
            req.add_header("Idempotency-Key", key)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw, status, headers = r.read(), r.status, r.headers
        except urllib.error.HTTPError as e:
            raw, status, headers = e.read(), e.code, e.headers
        ctype = headers.get("Content-Type", "")
        if headers_out is not None:
            headers_out.update((k.lower(), v) for k, v in headers.items())
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return status, ctype, parsed

    def login(self, user):
        deadline = time.time() + 60
        while True:
            try:
                s, _, b = self.call("POST", "/api/v1/auth/login", {"username": user, "password": PASSWORD})
                if s == 200:
                    return b["access_token"]
            except OSError:
                pass
            check(time.time() < deadline, f"{user} could not sign in")
            time.sleep(0.3)


def pg_bindir():
    explicit = os.environ.get("CELLQC_PG_BINDIR")
    if explicit:
        return explicit
    base = "/usr/lib/postgresql"
    versions = sorted((d for d in os.listdir(base) if d.isdigit()), key=int) if os.path.isdir(base) else []
    check(versions, "no PostgreSQL server binaries under /usr/lib/postgresql")
    return os.path.join(base, versions[-1], "bin")


def now_utc():
    """Now, as the API takes it, to the microsecond: a grant made earlier in
    the same second (the demo's, at start) covers it."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


def lab_instruments(http, token, spec_id):
    """{test_code: instrument id}: for each test of the specification that
    names an instrument kind, the first instrument of that kind in service
    now (the demo lab's calibrated cytometer)."""
    s, _, spec = http.call("GET", f"/api/v1/specifications/{spec_id}", token=token)
    check(s == 200, f"specification {spec_id}: {s} {spec}")
    s, _, usable = http.call("GET", "/api/v1/instruments?status=in_service", token=token)
    check(s == 200, f"instruments: {s} {usable}")
    out = {}
    for t in spec["tests"]:
        kind = t.get("instrument_kind")
        if kind:
            match = [i["id"] for i in usable if i["kind"] == kind]
            check(match, f"no {kind} in service for {t['code']}")
            out[t["code"]] = match[0]
    return out


def result_body(code, value, instruments, performed_at=None):
    """A result as the bench records it: performed now, on the lab's
    instrument when the test names a kind."""
    body = {"test_code": code, "value": value, "performed_at": performed_at or now_utc()}
    if code in instruments:
        body["instrument_id"] = instruments[code]
    return body
