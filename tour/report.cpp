#include "report.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <sstream>

namespace tandem::tour {
namespace {

std::vector<std::size_t> column_widths(const Table& table) {
  std::vector<std::size_t> widths;
  for (const auto& c : table.columns) widths.push_back(c.size());
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
    out << (i == 0 ? std::left : std::right) << std::setw(static_cast<int>(widths[i])) << cell << "  ";
  }
  out << '\n';
}

std::string quoted(std::string text) {
  std::replace(text.begin(), text.end(), '"', '\'');
  return '"' + text + '"';
}

}  // namespace

std::string fixed(double value, int decimals) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(decimals) << value;
  return text.str();
}
std::string times(double ratio) { return fixed(ratio, 2) + "x"; }
std::string percent(double fraction) { return fixed(100 * fraction, 0) + "%"; }

void Report::print(std::ostream& out) const {
  for (const auto& section : sections_) {
    out << "\n== " << section.title << " ==\n" << section.setup << "\n\n";
    for (const auto& table : section.tables) {
      const auto widths = column_widths(table);
      print_row(out, table.columns, widths);
      std::vector<std::string> rule;
      for (std::size_t w : widths) rule.emplace_back(w, '-');
      print_row(out, rule, widths);
      for (const auto& row : table.rows) print_row(out, row, widths);
      out << '\n';
    }
    for (const auto& takeaway : section.takeaways) out << "  * " << takeaway << '\n';
  }
}

void Report::write_markdown(const std::filesystem::path& file, const std::string& machine,
                            const std::string& chart_file) const {
  std::ofstream out(file);
  out << "# tandem tour\n\n" << machine << "\n";
  if (!chart_file.empty()) out << "\n![speedups](" << chart_file << ")\n";
  for (const auto& section : sections_) {
    out << "\n## " << section.title << "\n\n" << section.setup << "\n";
    for (const auto& table : section.tables) {
      out << "\n|";
      for (const auto& c : table.columns) out << ' ' << c << " |";
      out << "\n|";
      for (std::size_t i = 0; i < table.columns.size(); ++i) out << (i == 0 ? "---|" : "---:|");
      for (const auto& row : table.rows) {
        out << "\n|";
        for (const auto& cell : row) out << ' ' << cell << " |";
      }
      out << '\n';
    }
    if (!section.takeaways.empty()) out << '\n';
    for (const auto& takeaway : section.takeaways) out << "- " << takeaway << '\n';
  }
}

std::string Report::write_chart(const std::filesystem::path& png) const {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) return "gnuplot is not installed";
  std::vector<const Section*> charted;
  for (const auto& section : sections_) {
    if (!section.bars.empty()) charted.push_back(&section);
  }
  if (charted.empty()) return "nothing to chart";

  const auto dir = png.parent_path();
  std::ofstream script(dir / "tour.gp");
  script << "set terminal pngcairo size " << 560 * charted.size() << ",480 font 'DejaVu Sans,10'\n"
         << "set output " << quoted(png.string()) << "\n"
         << "set multiplot layout 1," << charted.size() << "\n"
         << "set style fill solid 0.85 border -1\nset boxwidth 0.7\nset xrange [-0.6:*]\n"
         << "set ylabel 'speedup over serial (x)'\nset yrange [0:*]\nset offsets 0, 0, graph 0.12, 0\nset grid ytics\nunset key\n"
         << "set xtics rotate by -30 left\nset bmargin 7\n";
  for (std::size_t i = 0; i < charted.size(); ++i) {
    const auto data = dir / ("tour-chart-" + std::to_string(i) + ".dat");
    std::ofstream rows(data);
    for (const auto& bar : charted[i]->bars) {
      rows << quoted(bar.label) << ' ' << bar.speedup << ' ' << (bar.peer ? "0xe08a2c" : "0x3b75af") << '\n';
    }
    script << "set title " << quoted(charted[i]->title) << "\n"
           << "plot " << quoted(data.string()) << " using 0:2:3:xtic(1) with boxes lc rgb variable, "
           << "'' using 0:2:(sprintf('%.2f',$2)) with labels offset 0,0.7 notitle\n";
  }
  script << "unset multiplot\n";
  script.close();
  const std::string command = "gnuplot " + quoted((dir / "tour.gp").string()) + " 2>&1";
  const int status = std::system(command.c_str());
  if (status != 0) return "gnuplot failed (exit " + std::to_string(WEXITSTATUS(status)) + ")";
  return "";
}

}  // namespace tandem::tour
