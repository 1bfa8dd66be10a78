// Queue, JoinableQueue and Pipe: one suite, every agent kind. MPMC stress with checksums
// (nothing lost, nothing duplicated), timeouts, close, oversize items, and producers that exit
// at once without losing what they put.
#include "tandem/queue.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "agent_kinds.hpp"
#include "tandem/error.hpp"
#include "tandem/pipe.hpp"
#include "tandem/process.hpp"
#include "tandem/process_pool.hpp"
#include "tandem/shared_memory.hpp"
#include "tandem/value.hpp"

using namespace std::chrono_literals;

namespace {

#ifdef TANDEM_UNDER_TSAN
constexpr std::uint32_t kItemsPerProducer = 2'000;
#else
constexpr std::uint32_t kItemsPerProducer = 20'000;
#endif
constexpr int kProducers = 4;
constexpr int kConsumers = 4;
constexpr std::uint32_t kTotal = kItemsPerProducer * kProducers;

// An item carries its id and a payload derived from it, of a length that varies with the id,
// so that items span one slot or several and wrap around the ring's end.
std::vector<std::uint32_t> make_item(std::uint32_t id) { return std::vector<std::uint32_t>(1 + id % 37, id * 2654435761u); }

void produce(tandem::Queue<std::vector<std::uint32_t>> queue, std::uint32_t first_id) {
  for (std::uint32_t i = 0; i < kItemsPerProducer; ++i) {
    auto item = make_item(first_id + i);
    item[0] = first_id + i;
    queue.put(item);
  }
}

// Counts each id it receives in `seen` (one counter per id) until the queue is closed and empty.
void consume(tandem::Queue<std::vector<std::uint32_t>> queue, tandem::SharedMemory seen, tandem::Value<long> corrupt) {
  auto* counts = reinterpret_cast<std::atomic<std::uint32_t>*>(seen.data());
  try {
    for (;;) {
      const auto item = queue.get();
      const std::uint32_t id = item[0];
      auto expected = make_item(id);
      expected[0] = id;
      if (id >= kTotal || item != expected) {
        corrupt.with_lock([](long& n) { ++n; });
        continue;
      }
      counts[id].fetch_add(1);
    }
  } catch (const tandem::QueueClosed&) {
  }
}

class QueueAcrossAgents : public ::testing::TestWithParam<AgentKind> {};

TEST_P(QueueAcrossAgents, ManyProducersManyConsumersLoseAndDuplicateNothing) {
  // Small, so that producers block on a full queue and items wrap around the ring's end often.
  tandem::Queue<std::vector<std::uint32_t>> queue(tandem::QueueOptions{.capacity_bytes = 8 << 10});
  tandem::SharedMemory seen(kTotal * sizeof(std::uint32_t));
  tandem::Value<long> corrupt(0);
  std::vector<std::unique_ptr<TestAgent>> consumers, producers;
  for (int c = 0; c < kConsumers; ++c) consumers.push_back(std::make_unique<TestAgent>(GetParam(), consume, queue, seen, corrupt));
  for (int p = 0; p < kProducers; ++p) {
    producers.push_back(std::make_unique<TestAgent>(GetParam(), produce, queue, static_cast<std::uint32_t>(p) * kItemsPerProducer));
  }
  for (auto& producer : producers) producer->join();
  queue.close();
  for (auto& consumer : consumers) consumer->join();
  EXPECT_EQ(corrupt.load(), 0);
  const auto* counts = reinterpret_cast<const std::atomic<std::uint32_t>*>(seen.data());
  std::uint32_t lost = 0, duplicated = 0;
  for (std::uint32_t id = 0; id < kTotal; ++id) {
    lost += counts[id].load() == 0;
    duplicated += counts[id].load() > 1;
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(duplicated, 0u);
  EXPECT_TRUE(queue.empty());
}

TEST_P(QueueAcrossAgents, AProducerThatExitsAtOnceLosesNothing) {
  tandem::Queue<std::string> queue;
  TestAgent producer(GetParam(), [](tandem::Queue<std::string> q) {
    for (int i = 0; i < 500; ++i) q.put(std::string(1000, static_cast<char>('a' + i % 26)));
  }, queue);
  producer.join();  // gone before anything is read
  for (int i = 0; i < 500; ++i) EXPECT_EQ(queue.get_for(1s), std::string(1000, static_cast<char>('a' + i % 26)));
  EXPECT_FALSE(queue.try_get().has_value());
}

TEST_P(QueueAcrossAgents, QsizeCountsItemsOfAnySizeAndFullSaysWhenAPutWouldWait) {
  tandem::Queue<std::string> queue(tandem::QueueOptions{.maxsize = 4, .capacity_bytes = 4096});
  EXPECT_EQ(queue.qsize(), 0u);
  TestAgent producer(GetParam(), [](tandem::Queue<std::string> q) {
    q.put("a");
    q.put(std::string(300, 'x'));  // five slots, one item
    q.put("b");
  }, queue);
  producer.join();
  EXPECT_EQ(queue.qsize(), 3u);
  EXPECT_FALSE(queue.full());
  queue.put("c");
  EXPECT_EQ(queue.qsize(), 4u);
  EXPECT_TRUE(queue.full());  // maxsize reached
  EXPECT_FALSE(queue.try_put("d"));
  EXPECT_EQ(queue.get(), "a");
  EXPECT_EQ(queue.qsize(), 3u);
  EXPECT_FALSE(queue.full());

  // Without maxsize, full when the ring has no free slot: 1 KiB holds 16 small items.
  tandem::Queue<int> ring(tandem::QueueOptions{.capacity_bytes = 1024});
  TestAgent filler(GetParam(), [](tandem::Queue<int> q) {
    for (int i = 0; q.try_put(i); ++i) {
    }
  }, ring);
  filler.join();
  EXPECT_EQ(ring.qsize(), 16u);
  EXPECT_TRUE(ring.full());
  EXPECT_EQ(ring.get(), 0);
  EXPECT_FALSE(ring.full());
  EXPECT_EQ(ring.qsize(), 15u);
}

TEST_P(QueueAcrossAgents, CloseWakesABlockedGetterAndABlockedPutter) {
  tandem::Queue<int> empty_queue;
  tandem::Queue<int> full_queue(tandem::QueueOptions{.maxsize = 1});
  full_queue.put(1);
  tandem::Value<int> woken(0);
  tandem::Value<int> stage(0);  // which blocking call the agent is about to make
  auto wait_for_close = [](tandem::Queue<int> empty, tandem::Queue<int> full, tandem::Value<int> woken_count,
                           tandem::Value<int> at) {
    at.store(1);
    try {
      empty.get();
    } catch (const tandem::QueueClosed&) {
      woken_count.with_lock([](int& n) { ++n; });
    }
    at.store(2);
    try {
      full.put(2);
    } catch (const tandem::QueueClosed&) {
      woken_count.with_lock([](int& n) { ++n; });
    }
  };
  TestAgent agent(GetParam(), wait_for_close, empty_queue, full_queue, woken, stage);
  // Each close must wake a caller that is truly blocked: at its call, and asleep in the kernel.
  auto blocked_at = [&](int call) {
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (stage.load() != call && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    return stage.load() == call && agent.wait_until_asleep();
  };
  ASSERT_TRUE(blocked_at(1)) << "the get never blocked";
  empty_queue.close();
  ASSERT_TRUE(blocked_at(2)) << "the put never blocked";
  full_queue.close();
  agent.join();
  EXPECT_EQ(woken.load(), 2);
  EXPECT_EQ(full_queue.get(), 1);  // what was queued before the close is still delivered
  EXPECT_THROW(full_queue.get(), tandem::QueueClosed);
  EXPECT_THROW(full_queue.put(3), tandem::QueueClosed);
}

TEST_P(QueueAcrossAgents, JoinWaitsUntilEveryItemIsDone) {
  tandem::JoinableQueue<int> work;
  tandem::Value<long> sum(0);
  for (int i = 1; i <= 100; ++i) work.put(i);
  EXPECT_FALSE(work.join_for(20ms));
  TestAgent worker(GetParam(), [](tandem::JoinableQueue<int> q, tandem::Value<long> total) {
    for (int i = 0; i < 100; ++i) {
      const int n = q.get();
      total.with_lock([n](long& t) { t += n; });
      q.task_done();
    }
  }, work, sum);
  EXPECT_TRUE(work.join_for(30s));
  EXPECT_EQ(sum.load(), 5050);
  worker.join();
  EXPECT_THROW(work.task_done(), tandem::Error);
}

TEST_P(QueueAcrossAgents, PipeCarriesBothWays) {
  auto [parent, child] = tandem::Pipe<std::string>();
  TestAgent agent(GetParam(), [](tandem::Connection<std::string> end) {
    for (std::string text; (text = end.recv()) != "stop";) end.send(text + "!");
    end.close();
  }, child);
  child.close();  // the agent holds its own copy (Python's pattern)
  parent.send("hello");
  parent.send("world");
  EXPECT_EQ(parent.recv_for(10s), "hello!");
  EXPECT_EQ(parent.recv_for(10s), "world!");
  parent.send("stop");
  agent.join();
  EXPECT_THROW(parent.recv(), tandem::QueueClosed);
  EXPECT_THROW(parent.send("late"), tandem::QueueClosed);
}

// A pipe's end closes as Python's does: when its last holder lets go, not when one copy does.
TEST_P(QueueAcrossAgents, APipeEndClosesWhenItsLastHolderLetsGo) {
  auto [here, there] = tandem::Pipe<int>();
  TestAgent agent(GetParam(), [](tandem::Connection<int> end) {
    end.send(1);
    end.send(2);
  }, there);  // the agent's copy goes when its callable returns (or its process ends)
  there.close();
  EXPECT_EQ(here.recv_for(10s), 1);
  EXPECT_EQ(here.recv_for(10s), 2);
  EXPECT_THROW(here.recv_for(10s), tandem::QueueClosed);  // Python's EOFError
  agent.join();
  EXPECT_THROW(here.send(3), tandem::QueueClosed);
  EXPECT_TRUE(here.poll());  // recv would not block
}

TEST_P(QueueAcrossAgents, APipeEndHeldByAKilledProcessCloses) {
  if (GetParam() == AgentKind::thread) GTEST_SKIP() << "a thread cannot be killed alone";
  auto [here, there] = tandem::Pipe<int>();
  TestAgent agent(GetParam(), [](tandem::Connection<int> end) {
    end.send(7);
    ::raise(SIGKILL);
  }, there);
  there.close();
  EXPECT_EQ(here.recv_for(10s), 7);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(here.recv_for(30s), tandem::QueueClosed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // noticed, not timed out
  agent.join();
}

// A ProcessPool's forked workers inherit this process's memory, its pipe ends included: they
// must not hold them, or the pipe would stay open as long as the pool.
TEST(Pipe, WorkersForkedAfterThePipeDoNotHoldItOpen) {
  auto [here, there] = tandem::Pipe<int>();
  tandem::ProcessPool pool(tandem::ProcessPool::Options{.workers = 2, .start_method = tandem::StartMethod::fork});
  EXPECT_EQ(pool.submit([](int n) { return n + 1; }, 1).get(), 2);  // the workers are there
  there.close();
  EXPECT_THROW(here.recv_for(10s), tandem::QueueClosed);
}

TEST(Pipe, ClosingOneCopyLeavesTheOthersOpen) {
  auto [here, there] = tandem::Pipe<int>();
  tandem::Connection<int> copy = here;
  copy.close();
  EXPECT_TRUE(copy.closed());
  EXPECT_THROW(copy.send(1), tandem::Error);
  EXPECT_FALSE(here.closed());
  here.send(1);
  EXPECT_EQ(there.recv_for(1s), 1);
  EXPECT_FALSE(there.poll());
  EXPECT_FALSE(there.try_recv().has_value());  // empty, and the other end still held
  here.close();
  EXPECT_THROW(there.recv_for(1s), tandem::QueueClosed);  // no holder of the other end left
  EXPECT_THROW(there.send(2), tandem::QueueClosed);       // nobody to receive it
  EXPECT_THROW((void)there.try_recv(), tandem::QueueClosed);
}

TEST(Pipe, AnEndOnItsWayThroughAQueueKeepsItOpen) {
  tandem::Queue<tandem::Connection<int>> mailbox;
  auto [here, there] = tandem::Pipe<int>();
  mailbox.put(there);
  there.close();  // the copy in the queue is still on its way
  EXPECT_FALSE(here.poll());
  tandem::Connection<int> arrived = mailbox.get();
  arrived.send(5);
  EXPECT_EQ(here.recv_for(1s), 5);
  arrived.close();
  EXPECT_THROW(here.recv_for(1s), tandem::QueueClosed);
}

// Trivially copyable, so put copies it straight into the ring and get straight out: a process
// spends most of a loop of puts or gets inside the window where it holds slots.
struct Block {
  std::array<char, 256 << 10> bytes;
};

std::unique_ptr<Block> block_of(char fill) {
  auto block = std::make_unique<Block>();
  block->bytes.fill(fill);
  return block;
}

TEST_P(QueueAcrossAgents, AProducerKilledInsideAPutDoesNotStopTheQueue) {
  if (GetParam() == AgentKind::thread) GTEST_SKIP() << "a thread cannot be killed alone";
  tandem::Queue<Block> queue(tandem::QueueOptions{.capacity_bytes = 4 << 20});
  for (int round = 0; round < 3; ++round) {
    TestAgent producer(GetParam(), [](tandem::Queue<Block> q) {
      const auto block = block_of('p');
      for (;;) q.put(*block);
    }, queue);
    for (int i = 0; i < 20; ++i) queue.get_for(10s);  // keeps the producer copying
    producer.kill();  // most likely in the middle of a put's copy
    producer.join();
    TestAgent next(GetParam(), [](tandem::Queue<Block> q) { q.put(*block_of('n')); }, queue);
    // Whatever the dead producer left claimed, the next one's item comes through.
    while (queue.get_for(10s).bytes[0] != 'n') {
    }
    next.join();
  }
}

TEST_P(QueueAcrossAgents, AConsumerKilledInsideAGetDoesNotStopTheQueue) {
  if (GetParam() == AgentKind::thread) GTEST_SKIP() << "a thread cannot be killed alone";
  tandem::Queue<Block> queue(tandem::QueueOptions{.maxsize = 3, .capacity_bytes = 1 << 20});
  const auto block = block_of('c');
  for (int round = 0; round < 3; ++round) {
    TestAgent consumer(GetParam(), [](tandem::Queue<Block> q) {
      for (;;) q.get();
    }, queue);
    for (int i = 0; i < 30; ++i) queue.put_for(*block, 10s);  // keeps the consumer copying
    consumer.kill();  // most likely in the middle of a get's copy
    consumer.join();
    // Around the ring and past the slots the dead consumer held: each put must find room.
    while (queue.try_get()) {
    }
    for (int i = 0; i < 12; ++i) {
      queue.put_for(*block, 10s);
      queue.get_for(10s);
    }
  }
}

TEST_P(QueueAcrossAgents, BatchesKeepOrderAndLoseNothing) {
  constexpr std::uint64_t kCount = 200'000;
  tandem::Queue<std::uint64_t> numbers(tandem::QueueOptions{.capacity_bytes = 64 << 10});
  tandem::Queue<std::string> words(tandem::QueueOptions{.capacity_bytes = 64 << 10});
  TestAgent producer(GetParam(), [](tandem::Queue<std::uint64_t> n, tandem::Queue<std::string> w) {
    std::vector<std::uint64_t> batch(1000);
    for (std::uint64_t first = 0; first < kCount; first += batch.size()) {
      std::iota(batch.begin(), batch.end(), first);
      n.put_many(batch);
    }
    std::vector<std::string> texts;
    for (int i = 0; i < 3000; ++i) texts.push_back(std::string(static_cast<std::size_t>(i % 300), static_cast<char>('a' + i % 26)));
    w.put_many(texts);  // items of 0 to 299 bytes: one to six slots each
  }, numbers, words);
  std::uint64_t expected = 0;
  while (expected < kCount) {
    for (const std::uint64_t n : numbers.get_many_for(700, 10s)) ASSERT_EQ(n, expected++);
  }
  int i = 0;
  while (i < 3000) {
    for (const std::string& text : words.get_many_for(64, 10s)) {
      ASSERT_EQ(text, std::string(static_cast<std::size_t>(i % 300), static_cast<char>('a' + i % 26)));
      ++i;
    }
  }
  producer.join();
  EXPECT_TRUE(numbers.empty());
  EXPECT_TRUE(words.try_get_many(10).empty());
}

TEST_P(QueueAcrossAgents, AProducerKilledInsidePutManyDoesNotStopTheQueue) {
  if (GetParam() == AgentKind::thread) GTEST_SKIP() << "a thread cannot be killed alone";
  tandem::Queue<Block> queue(tandem::QueueOptions{.capacity_bytes = 4 << 20});
  for (int round = 0; round < 3; ++round) {
    TestAgent producer(GetParam(), [](tandem::Queue<Block> q) {
      std::vector<Block> blocks(3, *block_of('p'));
      for (;;) q.put_many(blocks);
    }, queue);
    for (int i = 0; i < 20; ++i) queue.get_for(10s);  // keeps the producer copying
    producer.kill();  // most likely in the middle of a batch's copy
    producer.join();
    TestAgent next(GetParam(), [](tandem::Queue<Block> q) { q.put(*block_of('n')); }, queue);
    while (queue.get_for(10s).bytes[0] != 'n') {
    }
    next.join();
  }
}

TEST_P(QueueAcrossAgents, AConsumerKilledInsideGetManyDoesNotStopTheQueue) {
  if (GetParam() == AgentKind::thread) GTEST_SKIP() << "a thread cannot be killed alone";
  tandem::Queue<Block> queue(tandem::QueueOptions{.maxsize = 6, .capacity_bytes = 2 << 20});
  const auto block = block_of('c');
  for (int round = 0; round < 3; ++round) {
    TestAgent consumer(GetParam(), [](tandem::Queue<Block> q) {
      for (;;) q.get_many(4);
    }, queue);
    for (int i = 0; i < 30; ++i) queue.put_for(*block, 10s);  // keeps the consumer copying
    consumer.kill();  // most likely in the middle of a batch's copy
    consumer.join();
    while (!queue.try_get_many(16).empty()) {
    }
    for (int i = 0; i < 12; ++i) {
      queue.put_for(*block, 10s);
      queue.get_many_for(1, 10s);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EachAgent, QueueAcrossAgents, ::testing::ValuesIn(kAllAgentKinds), agent_kind_name);

TEST(Queue, BatchesRespectMaxsizeAndTheirTimeouts) {
  tandem::Queue<int> queue(tandem::QueueOptions{.maxsize = 5});
  const std::vector<int> eight{1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(queue.try_put_many(eight), 5u);  // as many as maxsize leaves room for
  EXPECT_EQ(queue.try_put_many(eight), 0u);
  try {
    queue.put_many_for(std::span(eight).subspan(5), 30ms);
    ADD_FAILURE() << "a put_many into a full queue returned";
  } catch (const tandem::TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("0 of 3 items went in"), std::string::npos) << e.what();
  }
  EXPECT_EQ(queue.get_many(3), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(queue.get_many_for(10, 1s), (std::vector<int>{4, 5}));
  EXPECT_TRUE(queue.try_get_many(10).empty());
  EXPECT_TRUE(queue.get_many(0).empty());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(queue.get_many_for(4, 30ms), tandem::TimeoutError);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  queue.put_many_until(std::span(eight).first(2), std::chrono::steady_clock::now() + 1s);
  queue.close();
  EXPECT_THROW(queue.put_many(eight), tandem::QueueClosed);
  EXPECT_EQ(queue.get_many(10), (std::vector<int>{1, 2}));  // what was put before the close
  EXPECT_THROW(queue.get_many(10), tandem::QueueClosed);
}

TEST(Queue, AJoinableQueueCountsEveryItemOfABatch) {
  tandem::JoinableQueue<int> work;
  work.put_many(std::vector<int>{1, 2, 3});
  EXPECT_FALSE(work.join_for(20ms));
  EXPECT_EQ(work.get_many(3).size(), 3u);
  work.task_done();
  work.task_done();
  EXPECT_FALSE(work.join_for(20ms));
  work.task_done();
  EXPECT_TRUE(work.join_for(1s));
}

TEST(Queue, ABatchOfItemsThatCanNeverFitIsAnErrorNotAHang) {
  tandem::Queue<std::string> queue(tandem::QueueOptions{.capacity_bytes = 4096});
  const std::vector<std::string> items{"fits", std::string(5000, 'x')};
  EXPECT_THROW(queue.put_many(items), tandem::Error);
}

TEST(Queue, TimeoutsAndNonBlockingCalls) {
  tandem::Queue<int> queue(tandem::QueueOptions{.maxsize = 2});
  EXPECT_FALSE(queue.try_get().has_value());
  auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(queue.get_for(50ms), tandem::TimeoutError);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  EXPECT_TRUE(queue.try_put(1));
  queue.put_for(2, 1s);
  EXPECT_FALSE(queue.try_put(3));
  start = std::chrono::steady_clock::now();
  EXPECT_THROW(queue.put_for(3, 50ms), tandem::TimeoutError);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  std::thread consumer([queue, putter = ::gettid()]() mutable {
    EXPECT_TRUE(wait_until_asleep_in_futex(::getpid(), putter)) << "the put into a full queue never blocked";
    EXPECT_EQ(queue.get(), 1);
  });
  queue.put(3);  // blocks until the consumer makes room
  consumer.join();
  EXPECT_EQ(queue.get(), 2);
  EXPECT_EQ(queue.get(), 3);
}

TEST(Queue, AnItemThatCanNeverFitIsAnErrorNotAHang) {
  tandem::Queue<std::string> queue(tandem::QueueOptions{.capacity_bytes = 4096});
  EXPECT_EQ(queue.capacity_bytes(), 4096u);
  EXPECT_THROW(queue.put(std::string(5000, 'x')), tandem::Error);
  EXPECT_THROW(queue.try_put(std::string(5000, 'x')), tandem::Error);
  queue.put(std::string(4000, 'y'));  // fits: the queue is usable
  EXPECT_EQ(queue.get().size(), 4000u);
  EXPECT_THROW(tandem::Queue<int>(tandem::QueueOptions{.capacity_bytes = 0}), tandem::Error);
}

// What users put in fits the default queue: a megabyte (the encoded item is a little more), a
// 1080p frame. An item that can never fit fails in the producer, and a consumer waiting for it
// hears of it when its wait times out, in whichever process.
TEST(Queue, TheDefaultHoldsLargeItemsAndAnItemThatCanNeverFitIsToldToTheConsumer) {
  tandem::Queue<std::vector<char>> queue;
  queue.put(std::vector<char>(std::size_t{1} << 20, 'a'));
  queue.put(std::vector<char>(1920 * 1080 * 3, 'b'));
  EXPECT_EQ(queue.get().size(), std::size_t{1} << 20);
  EXPECT_EQ(queue.get().size(), 1920u * 1080u * 3u);
  tandem::Process producer([](tandem::Queue<std::vector<char>> q) { q.put(std::vector<char>(std::size_t{9} << 20)); },
                           queue);
  producer.start();
  producer.join();
  EXPECT_EQ(producer.exitcode(), 1) << "the producer's put threw";
  try {
    (void)queue.get_for(50ms);
    FAIL() << "expected TimeoutError";
  } catch (const tandem::TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("refused"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::to_string((std::size_t{9} << 20) + 8)), std::string::npos) << e.what();
  }
}

// The queue's shared words as another process could scribble them.
tandem::detail::QueueState& state_of(const tandem::Queue<int>& queue, tandem::SharedMemory& keep) {
  tandem::detail::ByteWriter out;
  tandem::detail::Traveller<tandem::Queue<int>>::encode(out, queue);
  tandem::detail::ByteReader in(out.bytes());
  auto state = tandem::detail::SharedState<tandem::detail::QueueState>::decode(in);
  keep = state.memory();
  return *state;
}

// Garbage in a queue's shared words (a process with a wild pointer, a deliberate scribbler) must
// not turn a bounded call into an endless one: each returns or throws by its deadline, and the
// non-blocking ones return at once. Run in a forked child, so that a failure is a timeout here.
TEST(Queue, ScribbledSharedWordsNeverHoldABoundedCallPastItsDeadline) {
  using Scribble = void (*)(tandem::detail::QueueState&, std::byte* records);
  const Scribble scribbles[] = {
      [](tandem::detail::QueueState& s, std::byte*) { s.tail.store(s.tail.load() + 123'456'789); },
      [](tandem::detail::QueueState& s, std::byte*) { s.head.store(s.tail.load() + 5); },
      [](tandem::detail::QueueState& s, std::byte*) { s.head.store(~std::uint64_t{0} - 3); },
      [](tandem::detail::QueueState& s, std::byte* records) {
        // every slot record says "taken by somebody ahead of you"
        for (std::uint64_t i = 0; i < s.slot_count; ++i) {
          auto* record = reinterpret_cast<std::atomic<std::uint32_t>*>(records + i * sizeof(tandem::detail::SlotMeta));
          record->store(static_cast<std::uint32_t>(i + 1000));
        }
      },
      [](tandem::detail::QueueState& s, std::byte* records) {
        for (std::uint64_t i = 0; i < s.slot_count; ++i) {
          auto* record = reinterpret_cast<tandem::detail::SlotMeta*>(records + i * sizeof(tandem::detail::SlotMeta));
          record->sequence.store(static_cast<std::uint32_t>(i + 1));
          record->bytes.store(0xffffff00u);
        }
      },
  };
  for (std::size_t which = 0; which < std::size(scribbles); ++which) {
    tandem::Queue<int> queue(tandem::QueueOptions{.capacity_bytes = 4096});
    for (int i = 0; i < 10; ++i) queue.put(i);
    for (int i = 0; i < 3; ++i) queue.get();
    tandem::SharedMemory memory(1);
    auto& state = state_of(queue, memory);
    // The slot records follow the state, at the next 64-byte boundary.
    std::byte* records = memory.data() + (sizeof(tandem::detail::Tagged<tandem::detail::QueueState>) + 63) / 64 * 64;
    scribbles[which](state, records);
    // Forked: the child checks the very queue the scribbles hit, not a handle decoded afresh.
    tandem::Process child(tandem::ProcessOptions{.start_method = tandem::StartMethod::fork}, [](tandem::Queue<int> queue) {
      auto bounded = [](auto call) {
        const auto start = std::chrono::steady_clock::now();
        try {
          call();
        } catch (const tandem::Error&) {
        }
        if (std::chrono::steady_clock::now() - start > 2s) std::_Exit(3);
      };
      bounded([&] { (void)queue.get_for(200ms); });
      bounded([&] { queue.put_for(7, 200ms); });
      bounded([&] { (void)queue.try_get(); });
      bounded([&] { (void)queue.try_put(8); });
      bounded([&] { (void)queue.full(); });
      if (queue.qsize() > queue.capacity_bytes() / 64) std::_Exit(4);  // one look per slot at most
      std::_Exit(0);
    }, queue);
    child.start();
    if (!child.join_for(20s)) {
      child.kill();
      child.join();
      ADD_FAILURE() << "scribble " << which << ": a bounded call never returned";
      continue;
    }
    EXPECT_EQ(child.exitcode(), 0) << "scribble " << which << ": a bounded call overran its deadline";
  }
}

TEST(Queue, FifoOrderForOneProducerAndOneConsumer) {
  tandem::Queue<std::uint64_t> queue(tandem::QueueOptions{.capacity_bytes = 1024});
  std::thread producer([queue]() mutable {
    for (std::uint64_t i = 0; i < 100'000; ++i) queue.put(i);
  });
  for (std::uint64_t i = 0; i < 100'000; ++i) ASSERT_EQ(queue.get(), i);
  producer.join();
}

TEST(Queue, PoolTasksTakeTheQueueAsAnArgument) {
  tandem::Queue<int> results;
  tandem::ProcessPool pool(2);
  std::vector<tandem::Future<void>> done;
  for (int i = 0; i < 20; ++i) done.push_back(pool.submit([](tandem::Queue<int> q, int n) { q.put(n * n); }, results, i));
  for (auto& f : done) f.get();
  int sum = 0;
  for (int i = 0; i < 20; ++i) sum += results.get_for(5s);
  EXPECT_EQ(sum, 2470);
}

TEST(Pipe, AOneWayPipeRefusesTheOtherDirection) {
  auto [reader, writer] = tandem::Pipe<int>(false);
  EXPECT_TRUE(reader.readable());
  EXPECT_FALSE(reader.writable());
  EXPECT_THROW(reader.send(1), tandem::Error);
  EXPECT_THROW(writer.recv(), tandem::Error);
  EXPECT_FALSE(reader.poll());
  writer.send(7);
  EXPECT_TRUE(reader.poll());
  EXPECT_EQ(reader.try_recv(), 7);
}

}  // namespace
