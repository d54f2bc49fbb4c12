#include "api/proxy_wire.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <vector>

namespace puddle::http {
namespace {

constexpr std::array<std::string_view, 9> kHopByHopHeaders = {
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
    "te",         "trailer",    "transfer-encoding", "upgrade"};

std::string Lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

std::string_view TrimSpaces(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Splits a comma-separated header value into lower-case tokens.
std::vector<std::string> ListTokens(std::string_view value) {
  std::vector<std::string> tokens;
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view token = TrimSpaces(value.substr(0, comma));
    if (!token.empty()) tokens.push_back(Lower(token));
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return tokens;
}

bool HeaderListsToken(const HeaderList& headers, std::string_view name, std::string_view token) {
  for (const auto& [key, value] : headers) {
    if (Lower(key) != name) continue;
    std::vector<std::string> tokens = ListTokens(value);
    if (std::find(tokens.begin(), tokens.end(), token) != tokens.end()) return true;
  }
  return false;
}

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

void AppendHeader(std::string& head, std::string_view name, std::string_view value) {
  head += name;
  head += ": ";
  head += value;
  head += "\r\n";
}

}  // namespace

HeaderList WithoutHopByHopHeaders(const HeaderList& headers) {
  std::vector<std::string> dropped(kHopByHopHeaders.begin(), kHopByHopHeaders.end());
  for (const auto& [name, value] : headers) {
    if (Lower(name) != "connection") continue;
    for (std::string& token : ListTokens(value)) dropped.push_back(std::move(token));
  }

  HeaderList kept;
  for (const auto& [name, value] : headers) {
    if (std::find(dropped.begin(), dropped.end(), Lower(name)) == dropped.end()) {
      kept.emplace_back(name, value);
    }
  }
  return kept;
}

bool IsWebSocketUpgrade(const Request& request) {
  return request.method == "GET" && HeaderListsToken(request.headers, "connection", "upgrade") &&
         HeaderListsToken(request.headers, "upgrade", "websocket");
}

std::string FormatChunk(std::string_view data) {
  char size[20];
  auto [end, error] = std::to_chars(size, size + sizeof(size), data.size(), 16);
  std::string chunk(size, end);
  chunk += "\r\n";
  chunk += data;
  chunk += "\r\n";
  return chunk;
}

Status CheckRequestHeaders(const HeaderList& headers) {
  for (const auto& [name, value] : headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), IsTokenChar)) {
      return InternalError("proxy request header name '" + name + "' is not a valid token");
    }
    bool control = std::any_of(value.begin(), value.end(), [](char c) {
      auto byte = static_cast<unsigned char>(c);
      return (byte < 0x20 && c != '\t') || byte == 0x7f;
    });
    if (control) {
      return InternalError("proxy request header '" + name + "' has a control character in its value");
    }
  }
  return Ok();
}

std::string FormatUpstreamRequestHead(std::string_view method, std::string_view target,
                                      const HeaderList& headers, UpstreamBody body,
                                      uint64_t content_length, bool websocket_upgrade,
                                      std::string_view default_host) {
  std::string head;
  head += method;
  head += ' ';
  head += target;
  head += " HTTP/1.1\r\n";

  bool has_host = false;
  for (const auto& [name, value] : WithoutHopByHopHeaders(headers)) {
    std::string lower = Lower(name);
    // The proxy sets the framing itself and answers "Expect: 100-continue" on
    // its own, so these never reach the product as the client sent them.
    if (lower == "content-length" || lower == "expect") continue;
    if (lower == "host") {
      if (has_host) continue;  // HTTP/1.1 allows exactly one
      has_host = true;
    }
    AppendHeader(head, name, value);
  }
  if (!has_host) AppendHeader(head, "Host", default_host);

  if (body == UpstreamBody::kContentLength) {
    AppendHeader(head, "Content-Length", std::to_string(content_length));
  }
  if (body == UpstreamBody::kChunked) AppendHeader(head, "Transfer-Encoding", "chunked");
  if (websocket_upgrade) {
    AppendHeader(head, "Connection", "Upgrade");
    AppendHeader(head, "Upgrade", "websocket");
  } else {
    AppendHeader(head, "Connection", "close");
  }
  head += "\r\n";
  return head;
}

Response MakeProxiedResponse(int status, const HeaderList& product_headers,
                             const ProxyTarget& target) {
  Response response;
  response.status = status;
  for (const auto& [name, value] : WithoutHopByHopHeaders(product_headers)) {
    std::string lower = Lower(name);
    const auto& removed = target.remove_response_headers;
    if (std::find(removed.begin(), removed.end(), lower) != removed.end()) continue;
    response.headers.emplace_back(std::move(lower), value);
  }
  for (const auto& [name, value] : target.add_response_headers) {
    response.SetHeader(Lower(name), value);
  }
  return response;
}

std::string FormatUpgradeResponseHead(const Response& response) {
  std::string head = "HTTP/1.1 101 Switching Protocols\r\n";
  for (const auto& [name, value] : response.headers) {
    std::string lower = Lower(name);
    if (lower == "content-length" || lower == "connection" || lower == "upgrade") continue;
    AppendHeader(head, name, value);
  }
  AppendHeader(head, "Connection", "Upgrade");
  AppendHeader(head, "Upgrade", "websocket");
  head += "\r\n";
  return head;
}

WebSocketMessageReader::WebSocketMessageReader(OnMessage on_message, size_t max_message_bytes)
    : on_message_(std::move(on_message)), max_message_bytes_(max_message_bytes) {}

bool WebSocketMessageReader::Feed(std::string_view bytes) {
  while (!broken_ && !bytes.empty()) {
    if (in_payload_) {
      ConsumePayload(bytes);
      continue;
    }
    header_ += bytes.front();
    bytes.remove_prefix(1);
    if (!ParseHeader()) continue;  // the header needs more bytes
    if (!broken_ && payload_left_ == 0) FinishFrame();
  }
  return !broken_;
}

// Returns true once header_ contains a whole frame header (RFC 6455 section 5.2),
// which it then decodes, setting broken_ for framing the RFC forbids.
bool WebSocketMessageReader::ParseHeader() {
  if (header_.size() < 2) return false;
  auto byte = [this](size_t i) { return static_cast<uint8_t>(header_[i]); };
  uint8_t length_code = byte(1) & 0x7f;
  size_t length_bytes = 0;
  if (length_code == 126) length_bytes = 2;
  if (length_code == 127) length_bytes = 8;
  bool masked = (byte(1) & 0x80) != 0;
  size_t needed = 2 + length_bytes + (masked ? 4 : 0);
  if (header_.size() < needed) return false;

  fin_ = (byte(0) & 0x80) != 0;
  opcode_ = byte(0) & 0x0f;
  masked_ = masked;
  payload_left_ = length_code;
  if (length_bytes > 0) {
    payload_left_ = 0;
    for (size_t i = 0; i < length_bytes; ++i) payload_left_ = (payload_left_ << 8) | byte(2 + i);
  }
  for (size_t i = 0; i < 4; ++i) mask_[i] = masked ? byte(2 + length_bytes + i) : 0;
  payload_offset_ = 0;
  header_.clear();
  in_payload_ = payload_left_ > 0;

  bool control = opcode_ >= 0x8;
  if (control) {
    if (opcode_ > 0xa || !fin_ || payload_left_ > 125) broken_ = true;
  } else if (opcode_ == 0x0) {
    if (!in_message_) broken_ = true;
  } else if (opcode_ == 0x1 || opcode_ == 0x2) {
    if (in_message_) broken_ = true;
    in_message_ = true;
    message_.clear();
  } else {
    broken_ = true;  // reserved data opcode
  }
  return true;
}

void WebSocketMessageReader::ConsumePayload(std::string_view& bytes) {
  size_t take = static_cast<size_t>(std::min<uint64_t>(payload_left_, bytes.size()));
  if (opcode_ < 0x8) {
    for (size_t i = 0; i < take && message_.size() < max_message_bytes_; ++i) {
      message_ += static_cast<char>(bytes[i] ^ mask_[(payload_offset_ + i) % 4]);
    }
  }
  bytes.remove_prefix(take);
  payload_left_ -= take;
  payload_offset_ += take;
  if (payload_left_ == 0) {
    in_payload_ = false;
    FinishFrame();
  }
}

void WebSocketMessageReader::FinishFrame() {
  if (opcode_ >= 0x8 || !fin_) return;
  in_message_ = false;
  if (on_message_) on_message_(message_);
  message_.clear();
}

}  // namespace puddle::http
