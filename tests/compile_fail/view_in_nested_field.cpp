// Must not compile: a view (std::string_view) inside a nested field of a bound value.
#include <string_view>

#include "tandem/process_pool.hpp"

struct Label {
  std::string_view text;
};
struct Row {
  int id;
  Label label;
};

int main() {
  tandem::ProcessPool pool(1);
  auto f = tandem::partial([](Row row, int x) { return row.id + x; }, Row{1, {"one"}});
  return pool.submit(f, 2).get();
}
