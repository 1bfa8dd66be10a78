"""The tour's CPU-bound experiment in Python's standard library: count primes below a limit by
trial division, in chunks, serially, with ThreadPoolExecutor and with ProcessPoolExecutor.
Prints one JSON object: the times (medians, seconds) and the prime count each variant found.

    python3 cpu_bound.py --limit 500000 --chunks 64 --workers 2 --repeats 3
"""
import argparse
import json
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor


def count_primes(bounds):
    """The same trial division as tandem::workloads::count_primes, so both count the same work."""
    begin, end = bounds
    count = 0
    for n in range(max(begin, 2), end):
        d = 2
        prime = True
        while d * d <= n:
            if n % d == 0:
                prime = False
                break
            d += 1
        count += prime
    return count


def timed(repeats, run):
    """Median seconds of `repeats` runs, and the result of the last one."""
    samples, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ranges = [(args.limit * i // args.chunks, args.limit * (i + 1) // args.chunks) for i in range(args.chunks)]

    serial, serial_count = timed(args.repeats, lambda: sum(map(count_primes, ranges)))
    with ThreadPoolExecutor(args.workers) as pool:
        threads, thread_count = timed(args.repeats, lambda: sum(pool.map(count_primes, ranges)))
    with ProcessPoolExecutor(args.workers) as pool:
        # Start every worker process before timing, as the tour's pools are built before theirs.
        list(pool.map(time.sleep, [0.05] * args.workers))
        processes, process_count = timed(args.repeats, lambda: sum(pool.map(count_primes, ranges)))
    json.dump({"python": platform.python_version(),
               "gil": getattr(sys, "_is_gil_enabled", lambda: True)(),
               "limit": args.limit, "chunks": args.chunks, "workers": args.workers, "repeats": args.repeats,
               "serial": serial, "threads": threads, "processes": processes,
               "serial_count": serial_count, "thread_count": thread_count, "process_count": process_count},
              sys.stdout)
    print()


if __name__ == "__main__":
    main()
