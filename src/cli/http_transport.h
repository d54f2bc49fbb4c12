// HttpTransport: how the client sends one HTTPS request to the Puddle server.
//
// The client code builds calls against this interface; curl/curl_transport.h
// is the real implementation and tests substitute a fake.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace puddle::cli {

// How the server's certificate is checked.
enum class TlsMode {
  kSystemCa,  // the chain against the system's CA store, and the host name
  kCaFile,    // the chain against `ca_file` only, and the host name
  kPinned,    // the leaf certificate's SHA-256 fingerprint equals `pinned_fingerprint`
  kInsecure,  // nothing; the fingerprint is still recorded (used for the first login)
};

struct TlsPolicy {
  TlsMode mode = TlsMode::kSystemCa;
  std::string ca_file;             // for kCaFile
  std::string pinned_fingerprint;  // for kPinned, in FormatFingerprint's form
};

struct HttpCall {
  std::string method;  // "GET", "POST", "DELETE"
  // Path and query appended to the base URL: "/api/v1/systems?owner=me".
  std::string target;
  // Sent with Content-Type: application/json when present.
  std::optional<std::string> json_body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpReply {
  long status = 0;
  std::string body;
  std::string retry_after;  // the Retry-After header, if any
  // SHA-256 fingerprint of the server certificate the request went to.
  std::string peer_fingerprint;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;

  // Sends `call` and returns the reply, whatever its HTTP status. Fails when
  // no reply arrived: connection refused, timeout, or the TLS check failed,
  // in which case nothing of the request was sent.
  virtual Result<HttpReply> Send(const HttpCall& call) = 0;
};

// Formats a digest as colon-separated upper-case hex: "AB:01:...".
std::string FormatFingerprint(const unsigned char* digest, size_t length);

// Accepts a SHA-256 fingerprint as hex in either case, with or without colons,
// optionally prefixed with "sha256:" or "SHA256 Fingerprint=", and returns it
// in FormatFingerprint's form; nullopt when it is not 32 bytes of hex.
std::optional<std::string> NormalizeFingerprint(std::string_view text);

}  // namespace puddle::cli
