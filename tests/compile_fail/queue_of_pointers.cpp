// A Queue of a type that cannot travel between processes (a pointer means nothing in another
// address space) must not compile, with a message that says what to do.
#include "tandem/queue.hpp"

int main() {
  tandem::Queue<int*> queue;
  queue.put(nullptr);
}
