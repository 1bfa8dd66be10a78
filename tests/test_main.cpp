// main() of every test program: tandem::init first, so that pools can use each start method
// (spawn re-runs this program as a worker; init turns it into one before any test runs).
#include <gtest/gtest.h>

#include "tandem/start_method.hpp"

int main(int argc, char** argv) {
  tandem::init(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
