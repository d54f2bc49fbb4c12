// puddle_config_reference: prints a document rendered from the config schema.
//
//   puddle_config_reference markdown > docs/configuration.md
//   puddle_config_reference example > packaging/config.example.yaml
#include <iostream>
#include <string_view>

#include "config/reference.h"

int main(int argc, char** argv) {
  std::string_view document = argc == 2 ? argv[1] : "";
  if (document == "markdown") {
    std::cout << puddle::config::RenderReferenceMarkdown();
    return 0;
  }
  if (document == "example") {
    std::cout << puddle::config::RenderExampleConfig();
    return 0;
  }
  std::cerr << "usage: puddle_config_reference markdown|example\n";
  return 2;
}
