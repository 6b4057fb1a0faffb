#!/usr/bin/env python3
"""The table of bench/suite.sh: reads the raw JSON lines of one run, prints markdown
(medians over rounds with min-max, the ratio to each baseline, each issue-7 target met
or not met from the numbers) and writes everything as JSON.

  suite_report.py RESULTS.jsonl OUT.json CONFIG_JSON
"""
import json
import statistics
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Runs:
    def __init__(self, lines):
        self.lines = lines

    def series(self, system, workload, field, concurrency=None):
        """{round: value} of one system's workload (and client count)."""
        out = {}
        for d in self.lines:
            if d.get("system") != system or d.get("workload") != workload:
                continue
            if concurrency is not None and d.get("concurrency") != concurrency:
                continue
            if field in d:
                out[d["round"]] = float(d[field])
        return out

    def errors(self, system, workload, concurrency=None):
        return sum(
            int(d.get("errors", 0)) + (1 if d.get("failed") else 0)
            for d in self.lines
            if d.get("system") == system and d.get("workload") == workload
            and (concurrency is None or d.get("concurrency") == concurrency)
        )


def best_of(*series_list):
    """Per round, the best (largest) of several series: the best plain program."""
    rounds = set().union(*[s.keys() for s in series_list])
    return {r: max(s[r] for s in series_list if r in s) for r in rounds}


def stats(series):
    if not series:
        return None
    values = list(series.values())
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(x, unit):
    if x is None:
        return "n/a"
    if unit == "ms":
        return f"{x:.2f}" if x < 100 else f"{x:.0f}"
    if unit == "s":
        return f"{x:.2f}"
    if unit == "MB":
        return f"{x:.0f}"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def cell(st, unit):
    if st is None:
        return "not measured"
    if st["n"] == 1:
        return f"{fmt(st['median'], unit)} {unit}".strip()
    return f"{fmt(st['median'], unit)} ({fmt(st['min'], unit)}–{fmt(st['max'], unit)}) {unit}".strip()


def main():
    results, out_path, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    lines = load(results)
    runs = Runs(lines)
    moto_note = config.get("moto", "")
    rows = []

    def row(workload, metric, unit, tagd, tagd_errors, baseline=None, base=None,
            ratio_kind=None, target="", check=None):
        """ratio_kind: 'x' = tagd / baseline (throughput), 'speedup' = baseline / tagd
        (latency). check(tagd_median, ratio) -> bool decides met; None = no target."""
        t, b = stats(tagd), stats(base) if base is not None else None
        ratio = None
        if ratio_kind and t and b and b["median"] > 0 and t["median"] > 0:
            ratio = t["median"] / b["median"] if ratio_kind == "x" else b["median"] / t["median"]
        if check is None:
            met = ""
        elif tagd_errors:
            met = f"not met ({tagd_errors} errors)"
        elif t is None:
            met = "not measured"
        else:
            verdict = check(t["median"], ratio)
            met = "not measured" if verdict is None else ("**met**" if verdict else "not met")
        rows.append({
            "workload": workload, "metric": metric, "unit": unit,
            "tagd": t, "baseline": baseline, "baseline_stats": b,
            "ratio": ratio, "ratio_kind": ratio_kind, "target": target, "met": met,
        })

    def at_least(r):
        return lambda _t, ratio: None if ratio is None else ratio >= r

    # W1
    w1 = runs.series("tagd", "w1", "units_per_s")
    w1e = runs.errors("tagd", "w1")
    w1_sqlite = best_of(runs.series("sqlite-t1", "w1", "units_per_s"),
                        runs.series("sqlite-t16", "w1", "units_per_s"))
    w1_moto = best_of(runs.series("moto", "w5-write", "units_per_s"),
                      runs.series("moto", "w1", "units_per_s"))
    row("W1 TMS batch-create, 50 fresh disks × 10 tags, 16 clients", "tag writes/s", "", w1, w1e,
        "plain SQLite, one commit per 500-row batch (S1i; best of 1 and 16 writers)",
        w1_sqlite, "x", "≥ 2× SQLite S1i", at_least(2))
    row("", "tag writes/s", "", w1, w1e, "moto tag_resources 20×10 (best of 1 and 16 clients)"
        + ("" if w1_moto else f" — moto {moto_note}"), w1_moto, "x", "≥ 2× moto", at_least(2))
    row("", "tag writes/s", "", w1, w1e, "plain SQLite, one writer, 16 batches per commit",
        runs.series("sqlite-group16", "w1", "units_per_s"), "x")
    row("", "tag writes/s", "", w1, w1e,
        "plain SQLite, one writer, 16 batches per commit, no query index (tagd's schema)",
        runs.series("sqlite-group16-noidx", "w1", "units_per_s"), "x")
    row("", "tag writes/s", "", w1, w1e, "HTTP ceiling (bare axum, same requests)",
        runs.series("http-ceiling", "w1", "units_per_s"), "x")
    row("", "p50", "ms", runs.series("tagd", "w1", "p50_ms"), w1e,
        "HTTP ceiling", runs.series("http-ceiling", "w1", "p50_ms"))
    row("", "p99", "ms", runs.series("tagd", "w1", "p99_ms"), w1e,
        "HTTP ceiling", runs.series("http-ceiling", "w1", "p99_ms"))

    # W2
    w2 = runs.series("tagd", "w2", "units_per_s")
    w2e = runs.errors("tagd", "w2")
    row("W2 RDS tags/action, 1 tag, 32 clients", "durable writes/s", "", w2, w2e,
        "HTTP ceiling (same requests)", runs.series("http-ceiling", "w2", "units_per_s"), "x",
        "≥ 20,000/s", lambda t, _r: t >= 20000)
    row("", "durable writes/s", "", w2, w2e,
        "plain SQLite, one commit per write (best of 1 and 32 writers)",
        best_of(runs.series("sqlite-t1", "w2", "units_per_s"),
                runs.series("sqlite-t32", "w2", "units_per_s")), "x")
    row("", "durable writes/s", "", w2, w2e, "plain SQLite, one writer, 32 writes per commit",
        runs.series("sqlite-group32", "w2", "units_per_s"), "x")
    row("", "p99", "ms", runs.series("tagd", "w2", "p99_ms"), w2e,
        "HTTP ceiling", runs.series("http-ceiling", "w2", "p99_ms"))

    # W3
    w3e = runs.errors("tagd", "w3")
    row("W3 GET one resource's tags, 32 clients", "requests/s", "",
        runs.series("tagd", "w3", "rps"), w3e, "HTTP ceiling (same route, fixed body)",
        runs.series("http-ceiling", "w3", "rps"), "x", "≥ 50% of HTTP ceiling", at_least(0.5))
    row("", "p99", "ms", runs.series("tagd", "w3", "p99_ms"), w3e,
        "HTTP ceiling", runs.series("http-ceiling", "w3", "p99_ms"), None,
        "p99 ≤ 2 ms", lambda t, _r: t <= 2.0)

    # W5
    w5we = runs.errors("tagd", "w5-write")
    row("W5 M1: 20×10 per call, 1 client", "tag writes/s", "",
        runs.series("tagd", "w5-write", "units_per_s"), w5we,
        "moto tag_resources, 1 client" + ("" if runs.series("moto", "w5-write", "units_per_s")
                                           else f" — moto {moto_note}"),
        runs.series("moto", "w5-write", "units_per_s"), "x", "≥ moto", at_least(1))
    w5qe = runs.errors("tagd", "w5-query")
    n = config.get("w5_resources")
    row(f"W5 M2: env AND team over {n:,} resources, every match", "p50 per query", "ms",
        runs.series("tagd", "w5-query", "p50_ms"), w5qe,
        "moto get_resources, paged to the end" + ("" if runs.series("moto", "w5-query", "p50_ms")
                                                   else f" — moto {moto_note}"),
        runs.series("moto", "w5-query", "p50_ms"), "speedup", "≥ 20× faster than moto",
        at_least(20))
    row("", "p50 per query", "ms", runs.series("tagd", "w5-query", "p50_ms"), w5qe,
        "plain SQL on tagd's schema (no HTTP)", runs.series("sqlite", "w5-query", "p50_ms"),
        "speedup")

    # W4 (opt-in)
    if runs.series("tagd", "w4-startup", "ready_s"):
        row(f"W4 {config.get('w4_resources', 0):,} resources: startup", "to ready", "s", runs.series("tagd", "w4-startup", "ready_s"),
            0, target="≤ 2 s", check=lambda t, _r: t <= 2.0)
        row("", "tag index built (after start)", "s",
            runs.series("tagd", "w4-startup", "index_s"), 0)
        rss = {r: v / 1024 for r, v in runs.series("tagd", "w4-startup", "rss_kb").items()}
        row("", "resident memory, index built", "MB", rss, 0, target="≤ 300 MB",
            check=lambda t, _r: t <= 300)
        after = {r: v / 1024 for r, v in runs.series("tagd", "w4-get", "rss_kb").items()}
        row("", "resident memory, after W4", "MB", after, 0, target="≤ 300 MB",
            check=lambda t, _r: t <= 300)
        e = runs.errors("tagd", "w4-filter", 1)
        row("W4 two-key filter, first 100 + exact count, 1 client", "p50", "ms",
            runs.series("tagd", "w4-filter", "p50_ms", 1), e, target="p50 ≤ 10 ms",
            check=lambda t, _r: t <= 10)
        row("", "p99", "ms", runs.series("tagd", "w4-filter", "p99_ms", 1), e,
            target="p99 ≤ 20 ms", check=lambda t, _r: t <= 20)
        e = runs.errors("tagd", "w4-filter", 4)
        row("W4 the same, 4 clients", "p50", "ms", runs.series("tagd", "w4-filter", "p50_ms", 4), e,
            target="p50 ≤ 10 ms", check=lambda t, _r: t <= 10)
        row("", "p99", "ms", runs.series("tagd", "w4-filter", "p99_ms", 4), e,
            target="p99 ≤ 20 ms", check=lambda t, _r: t <= 20)
        for w, label in [("w4-count", "W4 DIS two-key count, 4 clients"),
                         ("w4-untagged", "W4 without_any_tag, 4 clients"),
                         ("w4-keys", "W4 tag-keys page, 4 clients"),
                         ("w4-values", "W4 tag-values page, 4 clients"),
                         ("w4-get", "W4 one resource's tags, 4 clients")]:
            row(label, "p99", "ms", runs.series("tagd", w, "p99_ms"), runs.errors("tagd", w),
                target="p99 ≤ 20 ms", check=lambda t, _r: t <= 20)

    # ---- print
    print()
    print(f"tagd benchmark suite: {config['rounds']} round(s) × {config['duration_s']} s, "
          f"{config['cores']} cores ({config['host']}), {config['profile']} build, "
          f"load client {config['client_threads']} thread(s), moto {config.get('moto')}, "
          f"{config.get('date', '')}; medians (min–max) over rounds.")
    print()
    print("| workload | metric | tagd | baseline | baseline figure | ratio | issue-7 target | met |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = ""
        if r["ratio"] is not None:
            if r["ratio_kind"] != "speedup":
                ratio = f"{r['ratio']:.2f}×"
            elif r["ratio"] >= 1:
                ratio = f"{r['ratio']:.2f}× faster"
            else:
                ratio = f"{1 / r['ratio']:.2f}× slower"
        print(f"| {r['workload']} | {r['metric']} | {cell(r['tagd'], r['unit'])} | "
              f"{r['baseline'] or ''} | {cell(r['baseline_stats'], r['unit']) if r['baseline'] else ''} | "
              f"{ratio} | {r['target']} | {r['met']} |")

    print()
    print("All measurements (medians over rounds; units/s = requests/s × unit per request):")
    print()
    print("| system | workload | clients | requests/s | units/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    keys = []
    for d in lines:
        k = (d.get("system"), d.get("workload"), d.get("concurrency"))
        if k not in keys and "rps" in d:
            keys.append(k)
    for system, workload, conc in keys:
        def s(field):
            return stats(runs.series(system, workload, field, conc))
        print(f"| {system} | {workload} | {conc} | {cell(s('rps'), '')} | {cell(s('units_per_s'), '')} | "
              f"{cell(s('p50_ms'), '')} | {cell(s('p99_ms'), '')} | {runs.errors(system, workload, conc)} |")

    with open(out_path, "w") as f:
        json.dump({"config": config, "rows": rows, "measurements": lines}, f, indent=1)
    print()
    print(f"raw numbers: {out_path}")


if __name__ == "__main__":
    main()
