#include "api/http_wire.h"

#include <algorithm>
#include <cstdio>

namespace puddle::http {
namespace {

// Sent as the Server header; carries no version on purpose.
constexpr std::string_view kServerName = "puddle";

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsValidHeaderName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), IsTokenChar);
}

bool IsValidHeaderValue(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return (byte < 0x20 && c != '\t') || byte == 0x7f;
  });
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
           return lower(x) == lower(y);
         });
}

bool IsServerOwnedHeader(std::string_view name) {
  for (std::string_view owned :
       {"content-length", "transfer-encoding", "connection", "keep-alive", "server", "date"}) {
    if (EqualsIgnoringCase(name, owned)) return true;
  }
  return false;
}

// Reason phrases for the statuses Puddle sends; others get an empty phrase,
// which RFC 9112 section 4 allows.
std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Content";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

void AppendHeader(std::string& head, std::string_view name, std::string_view value) {
  head += name;
  head += ": ";
  head += value;
  head += "\r\n";
}

}  // namespace

Status CheckResponse(const Response& response) {
  if (response.status < 200 || response.status > 599) {
    return InternalError("handler returned HTTP status " + std::to_string(response.status));
  }
  for (const auto& [name, value] : response.headers) {
    if (!IsValidHeaderName(name)) {
      return InternalError("handler returned an invalid header name '" + name + "'");
    }
    if (!IsValidHeaderValue(value)) {
      return InternalError("handler returned a control character in header '" + name + "'");
    }
  }
  return Ok();
}

bool StatusAllowsBody(int status) { return status >= 200 && status != 204 && status != 304; }

std::string FormatHttpDate(std::time_t now) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[40];
  std::snprintf(text, sizeof(text), "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[utc.tm_wday],
                utc.tm_mday, kMonths[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min,
                utc.tm_sec);
  return text;
}

std::string FormatResponseHead(const Response& response, const ResponseFraming& framing) {
  std::string head = framing.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  head += std::to_string(response.status);
  head += ' ';
  head += ReasonPhrase(response.status);
  head += "\r\n";

  for (const auto& [name, value] : response.headers) {
    if (!IsServerOwnedHeader(name)) AppendHeader(head, name, value);
  }
  AppendHeader(head, "Server", kServerName);
  AppendHeader(head, "Date", FormatHttpDate(std::time(nullptr)));
  if (framing.content_length) AppendHeader(head, "Content-Length", std::to_string(*framing.content_length));
  if (framing.chunked) AppendHeader(head, "Transfer-Encoding", "chunked");
  // HTTP/1.1 keeps connections open by default and HTTP/1.0 closes them.
  if (!framing.keep_alive && framing.version >= 11) AppendHeader(head, "Connection", "close");
  if (framing.keep_alive && framing.version == 10) AppendHeader(head, "Connection", "keep-alive");
  head += "\r\n";
  return head;
}

}  // namespace puddle::http
