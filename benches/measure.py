#!/usr/bin/env python3
"""Runs one command as a process and prints its wall time and peak memory.

usage: measure.py COMMAND [ARGS...]

Prints `<seconds> <peak MiB>` on the last line of standard output; the
command's own output goes to standard error. Exits with the command's status.
Peak memory is the largest resident set of the process (and any children it
waited for), as the kernel counts it.
"""
import resource
import subprocess
import sys
import time


def main() -> int:
    started = time.perf_counter()
    done = subprocess.run(sys.argv[1:], stdout=sys.stderr, stderr=sys.stderr)
    took = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{took:.3f} {peak_mib:.0f}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
