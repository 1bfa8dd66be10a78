#include "report.hpp"

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <stdexcept>

namespace tandem::tour {
namespace {

std::vector<std::size_t> column_widths(const Table& table) {
  std::vector<std::size_t> widths;
  for (const auto& column : table.columns) widths.push_back(column.size());
  for (const auto& row : table.rows) {
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  return widths;
}

// First column left-aligned (labels), the others right-aligned (numbers).
void print_row(std::ostream& out, const std::vector<std::string>& cells, const std::vector<std::size_t>& widths) {
  out << "  ";
  for (std::size_t i = 0; i < widths.size(); ++i) {
    const std::string cell = i < cells.size() ? cells[i] : "";
    out << (i == 0 ? std::left : std::right) << std::setw(static_cast<int>(widths[i])) << cell;
    out << (i + 1 < widths.size() ? "  " : "\n");
  }
}

// Long takeaways wrapped at about 100 columns, so the report reads well in a terminal.
void print_wrapped(std::ostream& out, const std::string& text, const std::string& first, const std::string& rest,
                   std::size_t width = 100) {
  std::istringstream words(text);
  std::string word, line = first;
  bool line_has_word = false;
  while (words >> word) {
    if (line_has_word && line.size() + 1 + word.size() > width) {
      out << line << '\n';
      line = rest;
      line_has_word = false;
    }
    line += (line_has_word ? " " : "") + word;
    line_has_word = true;
  }
  out << line << '\n';
}

}  // namespace

void Chart::set(const std::string& group, const std::string& series, double speedup) {
  const auto s = std::find_if(series_.begin(), series_.end(), [&](const Series& x) { return x.name == series; });
  if (s == series_.end()) throw std::logic_error("chart has no series " + series);
  auto g = std::find(groups_.begin(), groups_.end(), group);
  if (g == groups_.end()) {
    groups_.push_back(group);
    values_.emplace_back(series_.size(), std::numeric_limits<double>::quiet_NaN());
    g = groups_.end() - 1;
  }
  values_[static_cast<std::size_t>(g - groups_.begin())][static_cast<std::size_t>(s - series_.begin())] = speedup;
}

std::string fixed(double value, int decimals) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(decimals) << value;
  return text.str();
}
std::string times(double ratio) { return fixed(ratio, 2) + "x"; }
std::string percent(double fraction) { return fixed(100 * fraction, 0) + "%"; }
std::string counted(std::size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

void Report::print(std::ostream& out) const {
  for (const auto& section : sections_) {
    out << "\n== " << section.title << " ==\n";
    print_wrapped(out, section.setup, "", "");
    out << '\n';
    for (const auto& table : section.tables) {
      const auto widths = column_widths(table);
      print_row(out, table.columns, widths);
      std::vector<std::string> rule;
      for (std::size_t w : widths) rule.emplace_back(w, '-');
      print_row(out, rule, widths);
      for (const auto& row : table.rows) print_row(out, row, widths);
      out << '\n';
    }
    for (const auto& excerpt : section.excerpts) {
      out << "  " << excerpt.caption << ":\n";
      std::istringstream lines(excerpt.text);
      for (std::string line; std::getline(lines, line);) out << "    | " << line << '\n';
      out << '\n';
    }
    for (const auto& takeaway : section.takeaways) print_wrapped(out, takeaway, "  * ", "    ");
  }
}

void Report::write_markdown(const std::filesystem::path& file, const std::string& machine,
                            const std::string& chart_file, const std::string& no_chart_reason) const {
  std::ofstream out(file);
  out << "# tandem tour\n\n" << machine << "\n\n";
  if (chart_file.empty()) {
    out << "No chart: " << no_chart_reason << ".\n";
  } else {
    out << "![speedup over serial, per section](" << chart_file << ")\n";
  }
  for (const auto& section : sections_) {
    out << "\n## " << section.title << "\n\n" << section.setup << "\n";
    for (const auto& table : section.tables) {
      out << "\n|";
      for (const auto& column : table.columns) out << ' ' << column << " |";
      out << "\n|";
      for (std::size_t i = 0; i < table.columns.size(); ++i) out << (i == 0 ? "---|" : "---:|");
      for (const auto& row : table.rows) {
        out << "\n|";
        for (const auto& cell : row) out << ' ' << cell << " |";
      }
      out << '\n';
    }
    for (const auto& excerpt : section.excerpts) {
      out << '\n' << excerpt.caption << ":\n\n```\n" << excerpt.text << (excerpt.text.ends_with('\n') ? "" : "\n")
          << "```\n";
    }
    if (!section.takeaways.empty()) out << '\n';
    for (const auto& takeaway : section.takeaways) out << "- " << takeaway << '\n';
  }
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace tandem::tour
