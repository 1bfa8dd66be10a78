"""The tour's isolation experiment in Python's standard library: submit tasks to a
ProcessPoolExecutor of which some kill their own worker process (SIGSEGV), and count what
arrives. Prints one JSON object.

    python3 isolation.py --tasks 100 --every 10
"""
import argparse
import json
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool


def task(args):
    index, crash = args
    if crash:
        os.kill(os.getpid(), signal.SIGSEGV)
    return index * 2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--every", type=int, required=True)
    options = parser.parse_args()
    results = broken = other = 0
    with ProcessPoolExecutor(2) as executor:
        futures = []
        for i in range(options.tasks):
            try:
                futures.append(executor.submit(task, (i, i % options.every == 3)))
            except BrokenProcessPool:
                broken += 1  # a crash broke the pool while tasks were still being submitted
        for future in futures:
            try:
                future.result()
                results += 1
            except BrokenProcessPool:
                broken += 1
            except Exception:
                other += 1
    print(json.dumps({"python": sys.version.split()[0], "results": results, "broken": broken, "other": other}))


if __name__ == "__main__":
    main()
