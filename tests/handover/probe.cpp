// A tandem program that does nothing but start: the handover tests run it with forged hand-overs
// and check that it runs as itself (prints its line, exits 0) instead of taking a role.
#include <cstdio>

#include "tandem/start_method.hpp"

int main(int argc, char** argv) {
  tandem::init(argc, argv);
  std::printf("the program ran as itself\n");
  return 0;
}
