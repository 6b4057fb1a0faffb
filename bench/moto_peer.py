#!/usr/bin/env python3
"""The moto peer of bench/suite.sh: moto's Resource Groups Tagging API, driven with
boto3 as perf-anchors.md measured it (M1, M2). Prints one JSON line per command, in
the shape of examples/load.rs; exits 1 if any call failed.

  moto_peer.py load  --url URL [--resources 5000]   # tags 5,000 resources, 20 per call
  moto_peer.py m1    --url URL [--clients 1] [--duration 10] [--run-id X]
  moto_peer.py m2    --url URL [--resources 5000] [--duration 10]

Resources are AWS Glue ARNs: moto's Glue backend keeps every ARN it is asked to tag
and reports it to get_resources, with no create call first (as tagd --auto-register
does), and it is the cheapest resource moto has to list. Start each measurement series
on a fresh moto_server: what M1 writes, M2 would scan.

M1: tag_resources with 20 fresh resources x 10 tags per call (the AWS per-call
maximum), from --clients sequential clients.
M2: get_resources env=prod AND team=t3 over the `load` data, paged to the end with
boto3's paginator at the largest pages moto allows (100 resources, 500 tags: two pages
for the ~120 matches, as tagd's side takes two pages of 100); the count is checked. The data
scheme (five tags per resource, the same for the 20 of one call) is the one of
examples/load.rs (`m2_tags`) and examples/sqlite_ceiling.rs.
"""
import argparse
import json
import sys
import threading
import time

import boto3
from botocore.config import Config

ACCOUNT = "123456789012"
REGION = "us-east-1"
ENVS = ["prod", "dev", "test", "staging"]


def client(url, service):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, max_pool_connections=4),
    )


def glue_arn(name):
    return f"arn:aws:glue:{REGION}:{ACCOUNT}:database/{name}"


def touch_glue(url):
    # moto lists only the backends a caller has used; tagging alone does not create one.
    client(url, "glue").get_databases()


def m2_tags(c):
    return {
        "env": ENVS[c % 4],
        "team": f"t{(c // 4) % 10}",
        "owner": f"u{c}",
        "cost-center": f"cc{c % 100}",
        f"k{c % 50}": f"v{c % 10}",
    }


def m2_expected(resources):
    return sum(1 for c in range(resources // 20) if c % 4 == 0 and (c // 4) % 10 == 3) * 20


def quantile_ms(sorted_s, q):
    if not sorted_s:
        return 0.0
    rank = min(max(int(-(-q * len(sorted_s) // 1)), 1), len(sorted_s))
    return round(sorted_s[rank - 1] * 1000, 3)


def report(system, workload, concurrency, latencies, seconds, errors, unit, **extra):
    latencies.sort()
    rps = len(latencies) / seconds if seconds > 0 else 0.0
    line = {
        "system": system,
        "workload": workload,
        "concurrency": concurrency,
        "requests": len(latencies),
        "seconds": round(seconds, 3),
        "rps": round(rps, 1),
        "p50_ms": quantile_ms(latencies, 0.5),
        "p99_ms": quantile_ms(latencies, 0.99),
        "max_ms": quantile_ms(latencies, 1.0),
        "errors": errors,
        "unit_per_request": unit,
        "units_per_s": round(rps * unit),
    }
    line.update(extra)
    print(json.dumps(line), flush=True)
    return errors == 0 and latencies


def load(args):
    touch_glue(args.url)
    tagging = client(args.url, "resourcegroupstaggingapi")
    latencies = []
    started = time.monotonic()
    for c in range(args.resources // 20):
        arns = [glue_arn(f"m2-{c * 20 + j:06}") for j in range(20)]
        s = time.monotonic()
        failed = tagging.tag_resources(ResourceARNList=arns, Tags=m2_tags(c))["FailedResourcesMap"]
        if failed:
            print(f"moto_peer load: call {c} failed: {failed}", file=sys.stderr)
            return False
        latencies.append(time.monotonic() - s)
    return report("moto", "w5-load", 1, latencies, time.monotonic() - started, 0, 100)


def m1(args):
    touch_glue(args.url)
    deadline = time.monotonic() + args.duration
    tags = {f"k{k}": f"v{k}" for k in range(10)}
    results = []

    def worker(w):
        tagging = client(args.url, "resourcegroupstaggingapi")
        latencies, errors, seq = [], 0, 0
        while time.monotonic() < deadline:
            arns = [glue_arn(f"{args.run_id}-{w}-{seq}-{j}") for j in range(20)]
            s = time.monotonic()
            try:
                failed = tagging.tag_resources(ResourceARNList=arns, Tags=tags)["FailedResourcesMap"]
            except Exception as e:  # noqa: BLE001 - any failure counts, the run goes on
                failed = str(e)
            if failed:
                errors += 1
                if errors <= 3:
                    print(f"moto_peer m1: {failed}", file=sys.stderr)
            else:
                latencies.append(time.monotonic() - s)
            seq += 1
        results.append((latencies, errors))

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    latencies = [x for r in results for x in r[0]]
    errors = sum(r[1] for r in results)
    return report("moto", "w5-write" if args.clients == 1 else "w1",
                  args.clients, latencies, seconds, errors, 200)


def m2(args):
    tagging = client(args.url, "resourcegroupstaggingapi")
    paginator = tagging.get_paginator("get_resources")
    expected = m2_expected(args.resources)
    filters = [{"Key": "env", "Values": ["prod"]}, {"Key": "team", "Values": ["t3"]}]
    latencies, first_pages, errors = [], [], 0
    deadline = time.monotonic() + args.duration
    while time.monotonic() < deadline:
        s = time.monotonic()
        found = 0
        for i, page in enumerate(paginator.paginate(TagFilters=filters, ResourcesPerPage=100, TagsPerPage=500)):
            if i == 0:
                first_pages.append(time.monotonic() - s)
            found += len(page["ResourceTagMappingList"])
        if found != expected:
            errors += 1
            print(f"moto_peer m2: {found} matches, expected {expected}", file=sys.stderr)
            break
        latencies.append(time.monotonic() - s)
    first_pages.sort()
    return report("moto", "w5-query", 1, latencies, sum(latencies), errors, 1,
                  first_page_p50_ms=quantile_ms(first_pages, 0.5))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["load", "m1", "m2"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--resources", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--run-id", default="r")
    args = parser.parse_args()
    ok = {"load": load, "m1": m1, "m2": m2}[args.command](args)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
