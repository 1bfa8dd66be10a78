// What the tour measured, in a form that prints as aligned tables, renders as Markdown and feeds
// the chart. Each section returns a Section; main() collects them in a Report and writes it out.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <limits>
#include <string>
#include <vector>

namespace tandem::tour {

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

// Colours of the chart's series, so that tandem, its peers and the ideal look the same in
// every panel.
inline constexpr const char* kTandemColour = "#3b75af";
inline constexpr const char* kPeerColour = "#e08a2c";
inline constexpr const char* kIdealColour = "#b8b8b8";

// One chart panel: grouped bars of speedup over serial. Each group (x label) holds one bar per
// series; a variant a series did not run stays a gap, never a made-up bar.
class Chart {
 public:
  struct Series {
    std::string name;
    std::string colour;
  };

  Chart() = default;
  explicit Chart(std::vector<Series> series) : series_(std::move(series)) {}

  // Sets the bar of `series` (by name) in `group`, adding the group at the end if new.
  void set(const std::string& group, const std::string& series, double speedup);

  bool empty() const { return groups_.empty(); }
  const std::vector<Series>& series() const { return series_; }
  const std::vector<std::string>& groups() const { return groups_; }
  // values()[group][series]; NaN where there is no bar.
  const std::vector<std::vector<double>>& values() const { return values_; }

 private:
  std::vector<Series> series_;
  std::vector<std::string> groups_;
  std::vector<std::vector<double>> values_;
};

// Text quoted as it was produced, e.g. what a diagnostic reported: its line breaks and
// indentation carry meaning, so it is neither wrapped nor put in a table.
struct Excerpt {
  std::string caption;
  std::string text;
};

struct Section {
  std::string title;
  std::string setup;  // what was run, how often, on what sizes
  std::vector<Table> tables;
  std::vector<Excerpt> excerpts;
  std::vector<std::string> takeaways;  // computed from the numbers above, never canned
  Chart chart;                         // left empty by sections with nothing to chart
};

class Report {
 public:
  void add(Section section) { sections_.push_back(std::move(section)); }

  void print(std::ostream& out) const;
  // Links `chart_file` (relative to the Markdown file), or says why there is no chart when
  // `chart_file` is empty.
  void write_markdown(const std::filesystem::path& file, const std::string& machine, const std::string& chart_file,
                      const std::string& no_chart_reason) const;
  // Renders every section's chart side by side with gnuplot into `png`, leaving the script and
  // data beside it; returns why there is no chart, or "" on success.
  std::string write_chart(const std::filesystem::path& png) const;

 private:
  std::vector<Section> sections_;
};

// Formatting shared by the sections: "123.4", "1.96x", "87%", "1 run" / "3 runs".
std::string fixed(double value, int decimals);
std::string times(double ratio);
std::string percent(double fraction);
std::string counted(std::size_t n, const std::string& noun);

}  // namespace tandem::tour
