#!/usr/bin/env python3
"""Issue 16, items 3 and 5: what one tenant's data and load cost the others, and what
unpaged listings cost in memory. Loopback only; every figure is compared within the run.

  bench/tenants.py keys     [--keys 1000000] [--bin PATH]   # item 3, PostgreSQL
  bench/tenants.py unpaged  [--instances 50000] [--bin PATH] # item 5, SQLite

`keys`: a throwaway PostgreSQL database (BENCH_DATABASE_URL's server) where the first
domain holds KEYS distinct keys (20 per resource, written with generate_series) and a
second domain 7 keys on 5 disks. Prints the second domain's `GET /v1.0/tag-keys` latency
before and after the load, then while 20 `tag-keys?region_id=nowhere` calls by a
non-admin user of the large domain run at once: its write latency and statuses, its
listing latency and /readyz.

`unpaged`: INSTANCES RDS instances x 20 keys, every value distinct, written with sqlite3;
peak resident memory (VmHWM, reset through /proc/PID/clear_refs) of one and of 16
parallel `GET /v3/{project_id}/tags`.

--bin runs another tagd binary (e.g. one built from main) against the same workload; the
data is written to match the schema that binary creates.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, token=None, body=None, timeout=60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("X-Auth-Token", token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            payload, status, headers = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        payload, status, headers = e.read(), e.code, e.headers
    return status, payload, headers, time.perf_counter() - started


def credential(directory, name):
    for line in open(os.path.join(directory, "credentials")):
        if line.startswith(f'{name} = "'):
            return line.split('"')[1]
    raise KeyError(name)


class Tagd:
    def __init__(self, binary, directory, env=None, args=()):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.binary, self.directory = binary, directory
        environment = dict(os.environ, **(env or {}))
        environment.pop("TAGD_DATABASE_URL", None)
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", directory, *args],
            env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                call("GET", self.base + "/", timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("tagd did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait()

    def admin(self, *args, stdin=None, database=None):
        command = [self.binary, "admin", "--data-dir", self.directory]
        if database:
            command += ["--database-url", database]
        out = subprocess.run(command + list(args), input=stdin, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        return out.stdout

    def token(self, user, password, domain, scope):
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": password, "domain": {"name": domain}}}}, "scope": scope}}
        status, payload, headers, _ = call("POST", self.base + "/v3/auth/tokens", body=body)
        assert status == 201, payload
        return headers["X-Subject-Token"], json.loads(payload)

    def status_kib(self, field):
        for line in open(f"/proc/{self.process.pid}/status"):
            if line.startswith(field):
                return int(line.split()[1])
        raise KeyError(field)


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def keys_bench(args):
    admin_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    name = f"tagd_bench_tenants_{os.getpid()}"
    psql = lambda url, sql: subprocess.run(["psql", url, "-qAtc", sql], check=True,
                                           capture_output=True, text=True).stdout.strip()
    psql(admin_url, f"CREATE DATABASE {name}")
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    directory = tempfile.mkdtemp()
    tagd = None
    try:
        tagd = Tagd(args.bin, directory, args=["--database-url", url, "--auto-register"])
        big_domain, big_project = credential(directory, "domain_id"), credential(directory, "project_id")
        tagd.admin("domain", "create", "small", database=url)
        tagd.admin("project", "create", "--domain", "small", "cn-south-1", database=url)
        tagd.admin("user", "create", "--domain", "small", "--admin", "olive", stdin="olive-password\n", database=url)
        tagd.admin("user", "create", "--domain", "tagd", "heavy", stdin="heavy-password\n", database=url)
        small, _ = tagd.token("olive", "olive-password", "small", {"domain": {"name": "small"}})
        _, scoped = tagd.token("olive", "olive-password", "small",
                               {"project": {"name": "cn-south-1", "domain": {"name": "small"}}})
        small_project = scoped["token"]["project"]["id"]
        heavy, _ = tagd.token("heavy", "heavy-password", "tagd", {"domain": {"name": "tagd"}})

        def write(n):
            body = {"project_id": small_project,
                    "resources": [{"resource_id": f"disk-{n % 5}", "resource_type": "disk"}],
                    "tags": [{"key": f"z-key-{n % 7}", "value": f"v{n}"}]}
            status, payload, _, took = call("POST", tagd.base + "/v1.0/resource-tags/batch-create", small, body)
            return status, took

        for n in range(7):
            assert write(n)[0] == 200
        def listing(checked=True):
            status, payload, _, took = call("GET", tagd.base + "/v1.0/tag-keys?limit=200", small, timeout=120)
            assert status == 200 or not checked, payload
            return took if checked else (status, took)

        before = statistics.median(listing() for _ in range(21))
        print(f"small domain tag-keys, large domain empty: median {ms(before)}")

        per_resource = 20
        resources = args.keys // per_resource
        has_domain = psql(url, "SELECT count(*) FROM information_schema.columns "
                               "WHERE table_name = 'tags' AND column_name = 'domain_id'") == "1"
        started = time.perf_counter()
        psql(url, f"""INSERT INTO resources (domain_id, project_id, resource_type, resource_id, created_at)
                      SELECT '{big_domain}', '{big_project}', 'disk', 'big-' || lpad(i::text, 8, '0'), 0
                      FROM generate_series(1, {resources}) i""")
        domain_column, domain_value = (", domain_id", ", r.domain_id") if has_domain else ("", "")
        psql(url, f"""INSERT INTO tags (rid, key, value{domain_column})
                      SELECT r.rid, 'a-' || r.resource_id || '-' || lpad(k::text, 2, '0'), 'v'{domain_value}
                      FROM resources r, generate_series(1, {per_resource}) k
                      WHERE r.domain_id = '{big_domain}'""")
        # One global resource (project "") whose key sorts last: a listing of the global
        # resources (what `region_id=nowhere` leaves a domain-scoped caller) must walk
        # every key of the domain before it finds it.
        psql(url, f"""INSERT INTO resources (domain_id, project_id, resource_type, resource_id, created_at)
                      VALUES ('{big_domain}', '', 'cdn', 'global-1', 0)""")
        psql(url, f"""INSERT INTO tags (rid, key, value{domain_column})
                      SELECT r.rid, 'zzz-global', 'v'{domain_value} FROM resources r
                      WHERE r.domain_id = '{big_domain}' AND r.resource_id = 'global-1'""")
        psql(url, "ANALYZE")
        print(f"large domain: {resources * per_resource} distinct keys written in {time.perf_counter() - started:.0f} s")

        after = statistics.median(listing() for _ in range(11))
        print(f"small domain tag-keys beside the large domain: median {ms(after)} ({after / before:.1f}x)")

        heavy_results = []
        def heavy_call():
            try:
                status, _, _, took = call("GET", tagd.base + "/v1.0/tag-keys?region_id=nowhere", heavy, timeout=120)
            except Exception as e:  # a timeout of the client counts as a failure
                status, took = str(e), 0.0
            heavy_results.append((status, took))
        threads = [threading.Thread(target=heavy_call) for _ in range(20)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        writes, lists, ready = [], [], []
        for n in range(20):
            writes.append(write(n))
            lists.append(listing(checked=False))
            ready.append(call("GET", tagd.base + "/readyz")[0])
        for t in threads:
            t.join()
        ok = sum(1 for s, _ in writes if s == 200)
        print(f"under 20 heavy calls of the large domain: small domain writes {ok}/20 ok "
              f"(statuses {sorted(set(s for s, _ in writes))}), write p50 {ms(statistics.median(t for _, t in writes))}, "
              f"max {ms(max(t for _, t in writes))}; tag-keys statuses {sorted(set(s for s, _ in lists))}, "
              f"p50 {ms(statistics.median(t for _, t in lists))} "
              f"({statistics.median(t for _, t in lists) / before:.1f}x); /readyz {sorted(set(ready))}")
        statuses = {}
        for s, _ in heavy_results:
            statuses[s] = statuses.get(s, 0) + 1
        print(f"the large domain's own heavy calls: statuses {statuses}, "
              f"longest {max(t for _, t in heavy_results):.1f} s")
    finally:
        if tagd:
            tagd.stop()
        shutil.rmtree(directory, ignore_errors=True)
        subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       capture_output=True)


def unpaged_bench(args):
    directory = tempfile.mkdtemp()
    tagd = None
    try:
        first = Tagd(args.bin, directory)
        first.stop()
        domain, project = credential(directory, "domain_id"), credential(directory, "project_id")
        db = os.path.join(directory, "tagd.db")
        started = time.perf_counter()
        subprocess.run(["sqlite3", db], check=True, text=True, input=f"""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {args.instances})
            INSERT INTO resources (domain_id, project_id, resource_type, resource_id, created_at)
            SELECT '{domain}', '{project}', 'rds', 'rds-' || printf('%07d', i), 0 FROM n;
            WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 19)
            INSERT INTO tags (rid, key, value)
            SELECT r.rid, 'key-' || printf('%02d', j), r.resource_id || '-' || printf('%02d', j)
            FROM resources r, k WHERE r.resource_type = 'rds';
        """)
        print(f"{args.instances} RDS instances x 20 keys written in {time.perf_counter() - started:.0f} s")
        env = {"TAGD_MAX_CONCURRENT_UNPAGED_LISTINGS": str(args.bound)} if args.bound else {}
        tagd = Tagd(args.bin, directory, env=env)
        token, _ = tagd.token("admin", credential(directory, "password"), "tagd", {"project": {"id": project}})
        url = f"{tagd.base}/v3/{project}/tags"
        # The tag index is built in the background: wait until a listing is answered by it.
        for _ in range(3):
            call("GET", url, token, timeout=600)
        print(f"resident memory, index built, before any measured listing: {tagd.status_kib('VmRSS:') / 1024:.0f} MiB")
        for parallel in (1, 16):
            with open(f"/proc/{tagd.process.pid}/clear_refs", "w") as f:
                f.write("5")
            rss = tagd.status_kib("VmRSS:")
            results = []
            def one():
                status, payload, _, took = call("GET", url, token, timeout=600)
                results.append((status, len(payload), took))
            threads = [threading.Thread(target=one) for _ in range(parallel)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - started
            peak = tagd.status_kib("VmHWM:")
            statuses = sorted(set(s for s, _, _ in results))
            print(f"{parallel:2d} at once: statuses {statuses}, answer {results[0][1] / 1e6:.1f} MB, "
                  f"slowest {max(t for _, _, t in results):.2f} s (all done in {wall:.2f} s); resident "
                  f"{rss / 1024:.0f} MiB -> peak {peak / 1024:.0f} MiB (+{(peak - rss) / 1024:.0f} MiB)")
    finally:
        if tagd:
            tagd.stop()
        shutil.rmtree(directory, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=["keys", "unpaged"])
    parser.add_argument("--bin", default=None, help="the tagd binary (default: a release build of this tree)")
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--instances", type=int, default=50_000)
    parser.add_argument("--bound", type=int, default=0,
                        help="TAGD_MAX_CONCURRENT_UNPAGED_LISTINGS (default: the binary's own)")
    args = parser.parse_args()
    if args.bin is None:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "tagd"], cwd=REPO, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
        args.bin = os.path.join(target, "release", "tagd")
    (keys_bench if args.workload == "keys" else unpaged_bench)(args)


if __name__ == "__main__":
    sys.exit(main())
