// A cereal type the fuzzers decode and the seeds encode.
#pragma once

#include <string>
#include <vector>

namespace fuzz_support {

struct Record {
  std::string name;
  std::vector<double> values;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(name, values);
  }
};

}  // namespace fuzz_support
