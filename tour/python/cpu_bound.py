"""The tour's CPU-bound experiment in Python's standard library: count primes by trial division
in chunks, serially, with ThreadPoolExecutor and with ProcessPoolExecutor. Prints JSON.

    python3 cpu_bound.py --limit 200000 --chunks 16 --workers 2 --repeats 3
"""
import argparse
import json
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor


def count_primes(bounds):
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
    samples, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ranges = [(args.limit * i // args.chunks, args.limit * (i + 1) // args.chunks) for i in range(args.chunks)]

    serial, count = timed(args.repeats, lambda: sum(map(count_primes, ranges)))
    with ThreadPoolExecutor(args.workers) as pool:
        threads, thread_count = timed(args.repeats, lambda: sum(pool.map(count_primes, ranges)))
    with ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(count_primes, [(0, 10)] * args.workers))  # start the workers before timing
        processes, process_count = timed(args.repeats, lambda: sum(pool.map(count_primes, ranges)))
    if not count == thread_count == process_count:
        raise SystemExit("prime counts differ between variants")
    print(json.dumps({"python": platform.python_version(), "limit": args.limit, "count": count,
                      "serial": serial, "threads": threads, "processes": processes}))


if __name__ == "__main__":
    main()
