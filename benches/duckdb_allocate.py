#!/usr/bin/env python3
"""Runs benches/allocation.sql in DuckDB on a CUR 2.0 file and a usage file.

usage: duckdb_allocate.py CUR USAGE [TOTALS.csv]

Prints the wall time and the process's peak memory, like tally-bench, and
optionally writes the allocatee x pool totals for the comparison.
"""
import pathlib
import resource
import sys
import time

import duckdb


def main() -> None:
    cur, usage = sys.argv[1], sys.argv[2]
    sql = (pathlib.Path(__file__).parent / "allocation.sql").read_text()
    sql = sql.replace("{cur}", cur.replace("'", "''")).replace("{usage}", usage.replace("'", "''"))
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(sql)
    rows = con.execute("SELECT allocatee, pool, unblended, amortized FROM totals").fetchall()
    took = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"duckdb: {took:.3f} s, peak {peak_mib:.0f} MiB, {len(rows)} allocatee x pool totals, {duckdb.__version__}")
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:
            f.write("allocatee,pool,unblended,amortized\n")
            for who, pool, u, a in rows:
                f.write(f"{who},{pool},{u:.9f},{a:.9f}\n")


if __name__ == "__main__":
    main()
