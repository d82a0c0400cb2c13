#!/usr/bin/env python3
"""What a membership PATCH costs by group size, on SQLite.

Starts the given Tandem binary on a scratch SQLite file, creates one SCIM
connection, max(SIZES) + 1 users, then per size a group with that many
members, and times five PATCHes that add one member (each followed by a
PATCH that removes it again), in Entra ID's shape. Prints the median times
of the adds and the removes, and the size of the answer (200 with the
whole group; 204 No Content, 0 bytes, when run with
TANDEM_SCIM__GROUP_PATCH_ANSWER=no_content in the environment, which the
server inherits). After the first add and at the end, a GET checks the
members. Groups of more than 5,000 members are filled by PATCHes of 5,000.

Usage: bench/large_groups.py [TANDEM_BIN] [SIZES]
       (defaults: target/release/tandem 100,1000,5000,10000)
Only the Python standard library is needed.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/tandem")
SIZES = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "100,1000,5000,10000").split(",")]


def call(method, url, token, body=None, ctype="application/json"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, method=method, data=data)
    req.add_header("Authorization", "Bearer " + token)
    req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    scratch = tempfile.mkdtemp(prefix="tandem-large-groups-")
    env = dict(os.environ, TANDEM_DATABASE_URL=f"sqlite://{scratch}/t.db", TANDEM_LOG__LEVEL="warn")
    subprocess.run([BIN, "migrate"], env=env, capture_output=True, check=True)
    out = subprocess.run([BIN, "integration-key", "create", "--name", "large-groups"],
                         env=env, capture_output=True, text=True, check=True).stdout
    key = next(w for w in out.split() if w.startswith("tandem_ik_"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([BIN, "serve", "--bind", f"127.0.0.1:{port}"],
                              env=dict(env, TANDEM_PUBLIC_URL=base),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        status, body = call("POST", base + "/api/v1/scim-connections", key, {"customer_id": "acme"})
        assert status == 201, (status, body[:300])
        conn = json.loads(body)
        scim_base, scim_key = conn["scim_base_url"], conn["scim_api_key"]

        def scim(method, path, body=None):
            return call(method, scim_base + path, scim_key, body, "application/scim+json")

        patch = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
        ids = []
        for i in range(max(SIZES) + 1):
            status, body = scim("POST", "/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                                   "userName": f"u{i}@acme.com", "active": True})
            assert status == 201, (status, body[:300])
            ids.append(json.loads(body)["id"])
        for n in SIZES:
            # Bodies are limited to 1 MiB: members beyond the first 5,000 come in PATCHes of 5,000.
            status, body = scim("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                                    "displayName": f"g{n}",
                                                    "members": [{"value": x} for x in ids[:min(n, 5000)]]})
            assert status == 201, (status, body[:300])
            gid = json.loads(body)["id"]
            for start in range(5000, n, 5000):
                status, body = scim("PATCH", f"/Groups/{gid}", {"schemas": [patch], "Operations": [
                    {"op": "Add", "path": "members", "value": [{"value": x} for x in ids[start:min(n, start + 5000)]]}]})
                assert status in (200, 204), (status, body[:300])
            adds, removes = [], []
            for round_ in range(5):
                started = time.perf_counter()
                status, body = scim("PATCH", f"/Groups/{gid}", {"schemas": [patch], "Operations": [
                    {"op": "Add", "path": "members", "value": [{"value": ids[n]}]}]})
                adds.append((time.perf_counter() - started) * 1000)
                assert status in (200, 204), (status, body[:300])
                answer = len(body)
                if round_ == 0:  # outside the timing: the member is there
                    status, got = scim("GET", f"/Groups/{gid}")
                    assert status == 200 and len(json.loads(got)["members"]) == n + 1, (status, got[:300])
                started = time.perf_counter()
                status, body = scim("PATCH", f"/Groups/{gid}", {"schemas": [patch], "Operations": [
                    {"op": "Remove", "path": f'members[value eq "{ids[n]}"]'}]})
                removes.append((time.perf_counter() - started) * 1000)
                assert status in (200, 204), (status, body[:300])
            status, got = scim("GET", f"/Groups/{gid}")
            assert status == 200 and len(json.loads(got)["members"]) == n, (status, got[:300])
            adds.sort()
            removes.sort()
            print(f"{n:>6} members: median of 5, adding one member {adds[2]:.1f} ms, removing it {removes[2]:.1f} ms; "
                  f"answer {answer:,} bytes")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
