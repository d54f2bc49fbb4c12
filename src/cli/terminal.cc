#include "cli/terminal.h"

#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <iostream>

namespace puddle::cli {
namespace {

// Saved terminal settings for the signal handler; written before it is installed.
struct termios saved_settings;
struct sigaction previous_interrupt;
struct sigaction previous_terminate;

void RestoreEchoAndReraise(int signal_number) {
  tcsetattr(STDIN_FILENO, TCSANOW, &saved_settings);
  sigaction(SIGINT, &previous_interrupt, nullptr);
  sigaction(SIGTERM, &previous_terminate, nullptr);
  raise(signal_number);
}

// Turns echo off on standard input for its lifetime.
class EchoOff {
 public:
  EchoOff() {
    if (tcgetattr(STDIN_FILENO, &saved_settings) != 0) return;
    struct sigaction action {};
    action.sa_handler = RestoreEchoAndReraise;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_interrupt);
    sigaction(SIGTERM, &action, &previous_terminate);
    handlers_installed_ = true;

    struct termios quiet = saved_settings;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    active_ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
  }

  ~EchoOff() {
    if (active_) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_settings);
    if (handlers_installed_) {
      sigaction(SIGINT, &previous_interrupt, nullptr);
      sigaction(SIGTERM, &previous_terminate, nullptr);
    }
  }

  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  bool active_ = false;
  bool handlers_installed_ = false;
};

}  // namespace

bool ProcessTerminal::IsInteractive() const { return isatty(STDIN_FILENO) == 1; }

std::optional<std::string> ProcessTerminal::Prompt(std::string_view prompt, bool echo) {
  std::cerr << prompt << std::flush;
  std::string line;
  bool read = false;
  if (echo) {
    read = static_cast<bool>(std::getline(std::cin, line));
  } else {
    EchoOff echo_off;
    read = static_cast<bool>(std::getline(std::cin, line));
  }
  if (!read) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace puddle::cli
