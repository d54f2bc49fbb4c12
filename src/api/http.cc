#include "api/http.h"

namespace puddle::http {

std::string_view Request::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

void Response::SetHeader(std::string name, std::string value) {
  std::erase_if(headers, [&](const auto& header) { return header.first == name; });
  headers.emplace_back(std::move(name), std::move(value));
}

std::string_view Response::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

Response JsonResponse(int status, std::string body) {
  Response response;
  response.status = status;
  response.headers.emplace_back("content-type", "application/json");
  response.body = std::move(body);
  return response;
}

}  // namespace puddle::http
