// The tour: tandem demonstrating, with measurements on this machine, what the seed text claims
// about threads and processes. Prints a report on stdout, shows progress on stderr, and writes
// the report as Markdown plus a PNG chart into the output folder.
//
//   tandem-tour [--out DIR] [--quick]
#include <chrono>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>

#include "sections.hpp"
#include "system.hpp"
#include "tandem/start_method.hpp"

namespace {

using namespace tandem::tour;

// The sections in the order they run and appear in the report. The name is what progress shows.
struct SectionEntry {
  const char* name;
  SectionFunction run;
};
constexpr SectionEntry kSections[] = {
    {"Agents", agents},
    {"CPU-bound", cpu_bound},
    {"I/O-bound", io_bound},
    {"Isolation", isolation},
    {"Race condition", race},
    {"Deadlock", deadlock},
    {"Starvation", starvation},
    {"Livelock", livelock},
};

int usage(const char* program, int code) {
  (code ? std::cerr : std::cout)
      << "usage: " << program << " [--out DIR] [--quick]\n"
      << "Measures, on this machine, what threads and processes are good for, with tandem (and Python\n"
      << "for comparison when python3 is installed). Progress goes to stderr, the report to stdout.\n"
      << "  --out DIR  where report.md and tour.png (with its gnuplot script and data) go;\n"
      << "             default: tour-output\n"
      << "  --quick    smaller sizes and fewer runs: a smoke test, not a measurement\n"
      << "  --help     this text\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  tandem::init(argc, argv);  // first: the fork server starts while this program has one thread
  Options options;
  std::filesystem::path out = "tour-output";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      options.quick = true;
    } else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) {
      out = argv[++i];
    } else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      return usage(argv[0], 0);
    } else {
      std::cerr << argv[0] << ": unexpected argument '" << argv[i] << "'\n";
      return usage(argv[0], 2);
    }
  }

  try {
    const auto start = std::chrono::steady_clock::now();
    // Fail before minutes of measuring, not after, when the folder cannot be made.
    std::filesystem::create_directories(out);
    Report report;
    {
      Progress progress(static_cast<int>(std::size(kSections)));
      for (const auto& section : kSections) {
        progress.section(section.name);
        report.add(section.run(options, progress));
      }
      progress.note("writing the report");
    }
    const std::string machine = machine_description();
    std::cout << "tandem tour" << (options.quick ? " (--quick: a smoke test, not a measurement)" : "") << "\n"
              << machine << '\n';
    report.print(std::cout);

    const std::string no_chart = report.write_chart(out / "tour.png");
    report.write_markdown(out / "report.md", machine, no_chart.empty() ? "tour.png" : "", no_chart);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "\nReport: " << (out / "report.md").string();
    if (no_chart.empty()) {
      std::cout << ", chart: " << (out / "tour.png").string();
    } else {
      std::cout << " (no chart: " << no_chart << ")";
    }
    std::cout << ". The tour took " << fixed(took, 1) << " s.\n";
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "\ntour failed: " << e.what() << '\n';
    return 1;
  }
}
