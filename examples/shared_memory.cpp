// SharedMemory: anonymous memory handed to a process as an argument, and named memory that a
// process opens by name. Names are unpredictable and owner-only, and removed even if the
// creator is killed.
//
//   ./shared_memory
#include <tandem/process.hpp>
#include <tandem/shared_memory.hpp>
#include <tandem/start_method.hpp>

#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  tandem::init(argc, argv);

  tandem::SharedMemory anonymous(1 << 20);  // 1 MiB, zero-filled, no name anywhere
  tandem::Process writer(tandem::ProcessOptions{.start_method = tandem::StartMethod::spawn},
                         [](tandem::SharedMemory m) { std::memcpy(m.data(), "written by a spawned process", 29); },
                         anonymous);
  writer.start();
  writer.join();
  std::printf("anonymous: %s\n", reinterpret_cast<const char*>(anonymous.data()));

  auto named = tandem::SharedMemory::create(4096);  // name chosen at random, e.g. /tandem-3f9c...
  tandem::Process opener(tandem::ProcessOptions{.start_method = tandem::StartMethod::forkserver},
                         [](std::string name) {
                           auto memory = tandem::SharedMemory::open(name);
                           std::memcpy(memory.data(), "hello by name", 14);
                         },
                         named.name());
  opener.start();
  opener.join();
  std::printf("named %s: %s\n", named.name().c_str(), reinterpret_cast<const char*>(named.data()));
}  // `named` goes: its name is removed from /dev/shm
