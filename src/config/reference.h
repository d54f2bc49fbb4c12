// Documents rendered from the schema tables, so they cannot drift from the code.
#pragma once

#include <string>

namespace puddle::config {

// Renders the configuration reference in Markdown; docs/configuration.md is
// exactly this text (a test compares them).
std::string RenderReferenceMarkdown();

// Renders a commented example config.yaml with every key Puddle uses at its
// default; packaging/config.example.yaml is exactly this text.
std::string RenderExampleConfig();

}  // namespace puddle::config
