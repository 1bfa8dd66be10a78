// The tour: tandem demonstrating, with measurements on this machine, what the seed text claims
// about threads and processes. Prints a report, and writes it as Markdown plus a PNG chart.
//
//   tandem-tour [--out DIR] [--quick]
#include <sys/utsname.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>

#include "sections.hpp"
#include "tandem/cpu.hpp"

namespace {

std::string machine_description() {
  utsname system{};
  uname(&system);
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  return std::string("Measured ") + date + " on " + system.sysname + " " + system.release + " (" + system.machine +
         "), " + std::to_string(tandem::cpu_count()) + " usable CPUs (" +
         std::to_string(std::thread::hardware_concurrency()) + " online); compiled with GCC " __VERSION__ ".";
}

int usage(const char* program, int code) {
  (code ? std::cerr : std::cout) << "usage: " << program << " [--out DIR] [--quick]\n"
                                 << "  --out DIR  where report.md and tour.png go (default: tour-output)\n"
                                 << "  --quick    smaller sizes, one run each: a smoke test\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  tandem::tour::Options options;
  std::filesystem::path out = "tour-output";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      options.quick = true;
    } else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) {
      out = argv[++i];
    } else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      return usage(argv[0], 0);
    } else {
      return usage(argv[0], 2);
    }
  }

  try {
    const auto start = std::chrono::steady_clock::now();
    std::filesystem::create_directories(out);
    tandem::tour::Report report;
    {
      tandem::tour::Progress progress(3);
      progress.section("Agents");
      report.add(tandem::tour::agents(options, progress));
      progress.section("CPU-bound");
      report.add(tandem::tour::cpu_bound(options, progress));
      progress.section("I/O-bound");
      report.add(tandem::tour::io_bound(options, progress));
      progress.step("writing the report");
    }
    const std::string machine = machine_description();
    std::cout << "tandem tour - " << machine << '\n';
    report.print(std::cout);

    const std::string chart_problem = report.write_chart(out / "tour.png");
    report.write_markdown(out / "report.md", machine, chart_problem.empty() ? "tour.png" : "");
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "\nReport: " << (out / "report.md").string();
    if (chart_problem.empty()) {
      std::cout << ", chart: " << (out / "tour.png").string();
    } else {
      std::cout << " (no chart: " << chart_problem << ")";
    }
    std::cout << ". The tour took " << tandem::tour::fixed(took, 1) << " s.\n";
  } catch (const std::exception& e) {
    std::cerr << "\ntour failed: " << e.what() << '\n';
    return 1;
  }
}
