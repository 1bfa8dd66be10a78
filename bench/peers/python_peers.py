"""Python's stdlib process pools doing what bench/compare.cpp asks of tandem's ProcessPool.

    python3 python_peers.py map N ROUNDS      multiprocessing.Pool(2).map(abs, N ints), default chunksize
    python3 python_peers.py submit N ROUNDS   ProcessPoolExecutor(2): submit N abs() tasks, then result() each
    python3 python_peers.py echo N ROUNDS     ProcessPoolExecutor(1): send N bytes to a worker and back
    python3 python_peers.py queue N ROUNDS    multiprocessing.Queue: a producer process puts N small ints, this one gets them

Prints the median seconds of ROUNDS timed rounds; pools are started (and warmed) before timing.
"""
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Pool, Process, Queue


def echo(payload):
    return payload


def produce(queue, n):
    for i in range(n):
        queue.put(i)


def main():
    mode, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    times = []
    if mode == "map":
        data = [-i for i in range(n)]
        with Pool(2) as pool:
            pool.map(abs, range(1000))
            for _ in range(rounds):
                start = time.perf_counter()
                out = pool.map(abs, data)
                times.append(time.perf_counter() - start)
                assert out[7] == 7
    elif mode == "submit":
        with ProcessPoolExecutor(2) as executor:
            list(executor.map(abs, range(100)))
            for _ in range(rounds):
                start = time.perf_counter()
                futures = [executor.submit(abs, -i) for i in range(n)]
                total = sum(f.result() for f in futures)
                times.append(time.perf_counter() - start)
                assert total == n * (n - 1) // 2
    elif mode == "echo":
        payload = bytes(n)
        with ProcessPoolExecutor(1) as executor:
            executor.submit(echo, payload).result()
            for _ in range(rounds):
                start = time.perf_counter()
                out = executor.submit(echo, payload).result()
                times.append(time.perf_counter() - start)
                assert len(out) == n
    elif mode == "queue":
        for _ in range(rounds):
            queue = Queue()
            producer = Process(target=produce, args=(queue, n))
            producer.start()
            queue.get()  # the producer runs: time from its first item
            start = time.perf_counter()
            for _ in range(n - 1):
                queue.get()
            times.append(time.perf_counter() - start)
            producer.join()
        times = [t / (n - 1) for t in times]  # seconds per item
    else:
        sys.exit("unknown mode " + mode)
    print(statistics.median(times))


if __name__ == "__main__":
    main()
