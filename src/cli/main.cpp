// dlmem: deep-learning memory management. See README.md for a tour.
#include <csignal>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "util/error.h"

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) must fail a write with EFBIG, which the atomic writer
  // reports and cleans up after, not kill the process halfway through a file.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"dlmem: train and plan neural networks whose memory does not fit"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "dlmem 0.1.0");
  std::vector<std::pair<CLI::App*, std::function<int()>>> cmds;
  auto add = [&](std::function<int()> (*f)(CLI::App&)) {
    auto action = std::make_shared<std::function<int()>>();
    *action = f(app);
    cmds.emplace_back(app.get_subcommands({}).back(), *action);
  };
  add(dlmem::cli::add_models);
  add(dlmem::cli::add_analyze);
  add(dlmem::cli::add_plan);
  add(dlmem::cli::add_train);
  add(dlmem::cli::add_compress);
  add(dlmem::cli::add_infer);
  add(dlmem::cli::add_run);
  add(dlmem::cli::add_simulate);
  add(dlmem::cli::add_calibrate);
  add(dlmem::cli::add_place);
  add(dlmem::cli::add_report);
  add(dlmem::cli::add_remat);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "dlmem: error: " << e.what() << "\n(run 'dlmem --help' or 'dlmem <command> --help')\n";
    return 2;
  }
  try {
    for (auto& [sub, action] : cmds)
      if (sub->parsed()) return action();
  } catch (const dlmem::Error& e) {
    std::cerr << "dlmem: error: " << e.what() << "\n";
    return 2;
  } catch (const dlmem::InternalError& e) {
    std::cerr << "dlmem: internal error (a bug, please report it): " << e.what() << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "dlmem: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
