// mpq: mixed-precision quantization of neural networks. main() parses the command line, runs one
// command and maps every error to a one-line message and a non-zero exit code.

#include <CLI/CLI.hpp>
#include <iostream>
#include <thread>

#include "cli/common.h"
#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "exec/runtime.h"

int main(int argc, char** argv) {
  CLI::App app{"mpq: mixed-precision quantization of neural networks", "mpq"};
  app.set_version_flag("--version", [] { return mpq::cli::version_text(); });
  app.require_subcommand(1);
  app.failure_message(CLI::FailureMessage::simple);
  int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  int64_t memory_mb = 1024;
  bool quiet = false, verbose = false;
  app.add_option("--threads", threads, "worker threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--memory", memory_mb,
                 "MiB of activations a pass over a batch may hold; batches shrink to fit "
                 "(default 1024)")
      ->check(CLI::Range(int64_t(16), int64_t(1) << 20));
  app.add_flag("-q,--quiet", quiet, "no progress or info on stderr");
  app.add_flag("-v,--verbose", verbose, "debug output on stderr");
  app.parse_complete_callback([&] {
    mpq::init_runtime(threads);
    mpq::set_activation_budget(memory_mb << 20);
    mpq::set_log_level(quiet     ? mpq::LogLevel::kQuiet
                       : verbose ? mpq::LogLevel::kDebug
                                 : mpq::LogLevel::kInfo);
  });
  mpq::cli::add_inspect_command(app);
  mpq::cli::add_eval_command(app);
  mpq::cli::add_zoo_command(app);
  mpq::cli::add_train_command(app);
  mpq::cli::add_quantize_command(app);
  mpq::cli::add_verify_command(app);
  mpq::cli::add_sensitivity_command(app);
  mpq::cli::add_search_command(app);
  mpq::cli::add_run_command(app);
  mpq::cli::add_report_command(app);
  mpq::cli::add_profile_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::string message = e.what();
    // CLI11 reports an unknown command as a missing one: name what was typed instead.
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--threads" || arg == "--memory") ++i;
      if (arg.empty() || arg[0] == '-') continue;
      std::string known;
      bool found = false;
      for (const auto* sub : app.get_subcommands([](CLI::App*) { return true; })) {
        known += (known.empty() ? "" : ", ") + sub->get_name();
        found = found || sub->get_name() == arg;
      }
      if (!found) message = "unknown command '" + arg + "' (expected one of " + known + ")";
      break;
    }
    std::cerr << "mpq: error: " << message << " (see mpq --help)" << std::endl;
    return 2;
  } catch (const mpq::Error& e) {
    std::cerr << "mpq: error: " << e.what() << std::endl;
    return 1;
  } catch (const std::exception& e) {
    // c10::Error messages span lines and carry a backtrace: keep the first line.
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    std::cerr << "mpq: error: " << msg << std::endl;
    return 3;
  }
  return 0;
}
