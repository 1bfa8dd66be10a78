// What the tour measured, in a form that prints as aligned tables, renders as Markdown and
// feeds the chart. Sections fill it; main() prints and writes it.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

namespace tandem::tour {

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

// One bar of the chart: a speedup over the section's serial baseline. Bars of a peer (Python)
// are drawn in another colour than tandem's.
struct Bar {
  std::string label;
  double speedup;
  bool peer = false;
};

struct Section {
  std::string title;
  std::string setup;  // what was run, how often, on what sizes
  std::vector<Table> tables;
  std::vector<std::string> takeaways;
  std::vector<Bar> bars;
};

class Report {
 public:
  void add(Section section) { sections_.push_back(std::move(section)); }
  const std::vector<Section>& sections() const { return sections_; }

  void print(std::ostream& out) const;
  void write_markdown(const std::filesystem::path& file, const std::string& machine,
                      const std::string& chart_file) const;
  // Renders the bars of every section with gnuplot into `png`; returns why not, or "" on success.
  std::string write_chart(const std::filesystem::path& png) const;

 private:
  std::vector<Section> sections_;
};

// Number formatting shared by the sections: "1.96x", "123.4", "87%".
std::string fixed(double value, int decimals);
std::string times(double ratio);
std::string percent(double fraction);

}  // namespace tandem::tour
