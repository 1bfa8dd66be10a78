// The report's chart: each section's grouped bars as one gnuplot panel, side by side, in a PNG.
// The .gp script and .dat files stay beside the PNG, so a reader can restyle it and re-render it
// with `gnuplot tour.gp` in that folder.
#include <cmath>
#include <fstream>
#include <string>

#include "report.hpp"
#include "system.hpp"

namespace tandem::tour {
namespace {

// A gnuplot single-quoted string: nothing inside is special but the quote itself.
std::string gp_string(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  return quoted + "'";
}

// A data-file field: double-quoted, so labels may hold spaces; inner double quotes dropped.
std::string data_label(const std::string& text) {
  std::string quoted = "\"";
  for (char c : text) {
    if (c != '"') quoted += c;
  }
  return quoted + "\"";
}

void write_data(const std::filesystem::path& file, const Chart& chart) {
  std::ofstream data(file);
  for (std::size_t g = 0; g < chart.groups().size(); ++g) {
    data << data_label(chart.groups()[g]);
    for (double value : chart.values()[g]) data << ' ' << (std::isnan(value) ? std::string("NaN") : fixed(value, 4));
    data << '\n';
  }
}

// Plots one panel. Bars of a clustered histogram sit at x = group + (series - (k-1)/2) / (k + gap);
// the value labels are placed there too.
void write_panel(std::ofstream& script, const std::string& title, const Chart& chart, const std::string& data) {
  const std::size_t k = chart.series().size();
  script << "set title " << gp_string(title) << "\nplot ";
  for (std::size_t s = 0; s < k; ++s) {
    script << (s ? "'' " : gp_string(data) + " ") << "using " << s + 2 << (s ? "" : ":xtic(1)")
           << " title " << gp_string(chart.series()[s].name) << " lc rgb " << gp_string(chart.series()[s].colour)
           << ", \\\n     ";
  }
  for (std::size_t s = 0; s < k; ++s) {
    const double shift = (static_cast<double>(s) - (static_cast<double>(k) - 1) / 2) / (static_cast<double>(k) + 1);
    script << "'' using ($0 " << (shift < 0 ? "- " : "+ ") << std::abs(shift) << "):" << s + 2 << ":(sprintf('%.2f', $" << s + 2
           << ")) with labels offset 0,0.7 font ',8' notitle" << (s + 1 < k ? ", \\\n     " : "\n");
  }
}

}  // namespace

std::string Report::write_chart(const std::filesystem::path& png) const {
  const auto gnuplot = find_program("gnuplot");
  if (!gnuplot) return "gnuplot is not on PATH";
  std::vector<const Section*> charted;
  for (const auto& section : sections_) {
    if (!section.chart.empty()) charted.push_back(&section);
  }
  if (charted.empty()) return "no section has anything to chart";

  const auto dir = png.parent_path();
  // Data of an earlier run with more panels must not sit beside this run's script.
  for (const auto& entry : std::filesystem::directory_iterator(dir.empty() ? "." : dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("tour-chart-") && name.ends_with(".dat")) std::filesystem::remove(entry.path());
  }
  const auto script_file = dir / "tour.gp";
  std::ofstream script(script_file);
  const std::string size = std::to_string(560 * charted.size()) + ",480";
  // pngcairo draws anti-aliased text; the plain libgd png terminal is the fallback.
  script << "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
         << "  set terminal pngcairo noenhanced size " << size << " font 'DejaVu Sans,10'\n"
         << "} else {\n  set terminal png noenhanced size " << size << "\n}\n"
         << "set output " << gp_string(png.filename().string()) << "\n"
         << "set multiplot layout 1," << charted.size() << "\n"
         << "set style data histograms\nset style histogram clustered gap 1\n"
         << "set style fill solid 0.85 border -1\nset boxwidth 0.9\n"
         << "set ylabel 'speedup over serial (x)'\nset yrange [0:*]\nset offsets 0, 0, graph 0.12, 0\n"
         << "set grid ytics\nset key top left\nset xtics nomirror scale 0\n";
  for (std::size_t i = 0; i < charted.size(); ++i) {
    const std::string data = "tour-chart-" + std::to_string(i + 1) + ".dat";
    write_data(dir / data, charted[i]->chart);
    write_panel(script, charted[i]->title, charted[i]->chart, data);
  }
  script << "unset multiplot\n";
  script.close();
  if (!script) return "cannot write " + script_file.string();

  // File names in the script are relative to its folder, so the folder can be moved and re-rendered.
  const auto result = run_command(
      {gnuplot->string(), "-e", "cd " + gp_string(dir.empty() ? "." : dir.string()),
       std::filesystem::absolute(script_file).string()},
      true);
  if (result.exit_code != 0) return "gnuplot failed (exit " + std::to_string(result.exit_code) + "): " + result.output;
  return "";
}

}  // namespace tandem::tour
