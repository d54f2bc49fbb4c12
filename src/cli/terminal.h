// Terminal: questions the client asks a person at the keyboard.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace puddle::cli {

class Terminal {
 public:
  virtual ~Terminal() = default;

  // Returns whether standard input is a terminal a person types into.
  virtual bool IsInteractive() const = 0;

  // Writes `prompt` to standard error and reads one line from standard input,
  // without echoing it when `echo` is false. Returns nullopt at end of input.
  virtual std::optional<std::string> Prompt(std::string_view prompt, bool echo) = 0;
};

// The process's standard input. Turning echo off is undone on return and,
// if the user presses Ctrl-C meanwhile, before the process ends.
class ProcessTerminal final : public Terminal {
 public:
  bool IsInteractive() const override;
  std::optional<std::string> Prompt(std::string_view prompt, bool echo) override;
};

}  // namespace puddle::cli
