// The supervisor: the detached process that runs one system's product.
//
// Invoked as `puddle supervise --system-id=<id>` by the local provider, with
// the launch spec on descriptor 3 (see supervisor_protocol.h). The app's main
// must dispatch this subcommand before it reads a config, opens a log file or
// starts a thread.
//
// It is started already unprivileged (spawn.h drops root before exec) and
// refuses to run as root. It leads its own session and process group and is
// a child subreaper, so every process the product starts, even one in a new
// session such as a Jupyter kernel, stays its descendant. It:
//   1. reads the spec, appends its output to <system dir>/product.log,
//   2. forks and execs the product with the spec's argv and environment, in
//      the home directory, with /dev/null on stdin and every descriptor but
//      0, 1 and 2 closed,
//   3. replies "ok <supervisor pid> <product pid>" (or "error ...") and
//      closes descriptor 3,
//   4. waits for the product, writes <system dir>/exit-status.json and a
//      last line to the log, then ends every remaining descendant (SIGTERM,
//      SIGKILL after a few seconds) and exits.
// SIGTERM, SIGINT and SIGHUP do not stop the supervisor itself: a stop
// signals the whole process group, and the supervisor outlives the product
// to record how it ended.
#pragma once

namespace puddle::local {

// Runs the supervisor; argv[1] is "supervise". Returns the process exit code.
int RunSupervisor(int argc, char** argv);

}  // namespace puddle::local
