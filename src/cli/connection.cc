#include "cli/connection.h"

#include <curl/curl.h>

#include <cctype>
#include <memory>
#include <optional>
#include <utility>

namespace puddle::cli {
namespace {

// Returns one part of a parsed URL, or "" when the URL has no such part.
std::string UrlPart(CURLU* url, CURLUPart part) {
  char* value = nullptr;
  if (curl_url_get(url, part, &value, 0) != CURLUE_OK || value == nullptr) return "";
  std::string text(value);
  curl_free(value);
  return text;
}

tl::unexpected<Error> InvalidUrl(std::string_view url, std::string_view reason) {
  return MakeError(ErrorCode::kValidationFailed,
                   "invalid server URL \"" + std::string(url) + "\": " + std::string(reason));
}

std::string MissingCredentialsMessage(const std::string& url, const std::string& path) {
  return "no API key for " + url +
         ": set PUDDLE_API_KEY_ID and PUDDLE_API_SECRET_KEY, or run `puddle login " + url +
         "` (which stores one in " + path + ")";
}

}  // namespace

Result<std::string> NormalizeBaseUrl(std::string_view text) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> url(curl_url(), curl_url_cleanup);
  if (!url) return InternalError("libcurl could not parse a URL");
  const std::string input(text);
  if (curl_url_set(url.get(), CURLUPART_URL, input.c_str(), 0) != CURLUE_OK) {
    return InvalidUrl(text, "expected https://host[:port]");
  }
  if (UrlPart(url.get(), CURLUPART_SCHEME) != "https") {
    return InvalidUrl(text, "Puddle is reached over HTTPS; use https://");
  }
  if (!UrlPart(url.get(), CURLUPART_USER).empty() ||
      !UrlPart(url.get(), CURLUPART_PASSWORD).empty()) {
    return InvalidUrl(text, "remove the user name and password; `puddle login` asks for them");
  }
  if (!UrlPart(url.get(), CURLUPART_QUERY).empty() ||
      !UrlPart(url.get(), CURLUPART_FRAGMENT).empty()) {
    return InvalidUrl(text, "remove the query and fragment");
  }

  std::string host = UrlPart(url.get(), CURLUPART_HOST);
  if (host.empty()) return InvalidUrl(text, "the host is missing");
  // Host names are case-insensitive; one spelling lets URLs be compared.
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string normalized = "https://" + host;
  if (std::string port = UrlPart(url.get(), CURLUPART_PORT); !port.empty()) {
    normalized += ":" + port;
  }
  std::string path = UrlPart(url.get(), CURLUPART_PATH);
  while (!path.empty() && path.back() == '/') path.pop_back();
  return normalized + path;
}

Result<std::optional<std::string>> LookupEitherSpelling(const EnvLookup& env,
                                                        const std::string& upper,
                                                        const std::string& lower) {
  std::optional<std::string> upper_value = env(upper);
  std::optional<std::string> lower_value = env(lower);
  if (upper_value && lower_value && *upper_value != *lower_value) {
    return MakeError(ErrorCode::kValidationFailed,
                     upper + " and " + lower + " are both set, to different values; unset one");
  }
  return upper_value ? upper_value : lower_value;
}

TlsPolicy ChooseTlsPolicy(const EnvLookup& env, const ConnectionOptions& options,
                          const std::string& stored_fingerprint,
                          const std::string& stored_ca_cert) {
  TlsPolicy tls;
  if (options.insecure) {
    tls.mode = TlsMode::kInsecure;
    return tls;
  }
  std::string ca_file = options.ca_cert;
  if (ca_file.empty()) ca_file = env("PUDDLE_CA_CERT").value_or("");
  if (ca_file.empty()) ca_file = stored_ca_cert;
  if (!ca_file.empty()) {
    tls.mode = TlsMode::kCaFile;
    tls.ca_file = ca_file;
    return tls;
  }
  if (!stored_fingerprint.empty()) {
    tls.mode = TlsMode::kPinned;
    tls.pinned_fingerprint = stored_fingerprint;
    return tls;
  }
  tls.mode = TlsMode::kSystemCa;
  return tls;
}

Result<Connection> ResolveConnection(const EnvLookup& env, const ConnectionOptions& options) {
  auto key_id = LookupEitherSpelling(env, "PUDDLE_API_KEY_ID", "PUDDLE_api_key_id");
  if (!key_id) return tl::unexpected(key_id.error());
  auto secret = LookupEitherSpelling(env, "PUDDLE_API_SECRET_KEY", "PUDDLE_api_secret_key");
  if (!secret) return tl::unexpected(secret.error());
  if (key_id->has_value() != secret->has_value()) {
    return MakeError(ErrorCode::kValidationFailed,
                     key_id->has_value()
                         ? "PUDDLE_API_KEY_ID is set but PUDDLE_API_SECRET_KEY is not; set both"
                         : "PUDDLE_API_SECRET_KEY is set but PUDDLE_API_KEY_ID is not; set both");
  }

  auto path = CliConfigPath(env);
  if (!path) return tl::unexpected(path.error());
  auto stored = ReadCliConfig(*path);
  if (!stored) return tl::unexpected(stored.error());

  // The URL: PUDDLE_URL, else the stored one.
  Connection connection;
  std::optional<std::string> env_url = env("PUDDLE_URL");
  if (env_url) {
    auto url = NormalizeBaseUrl(*env_url);
    if (!url) return tl::unexpected(url.error().WithContext("PUDDLE_URL"));
    connection.base_url = *url;
  } else if (stored->has_value() && !(*stored)->url.empty()) {
    auto url = NormalizeBaseUrl((*stored)->url);
    if (!url) return tl::unexpected(url.error().WithContext(path->string()));
    connection.base_url = *url;
  } else {
    return MakeError(ErrorCode::kUnauthenticated,
                     "no Puddle server configured: run `puddle login https://HOST:PORT`, or set "
                     "PUDDLE_URL, PUDDLE_API_KEY_ID and PUDDLE_API_SECRET_KEY");
  }

  // What was stored at login belongs to the stored URL only.
  const CliConfig* same_server = nullptr;
  if (stored->has_value()) {
    auto stored_url = NormalizeBaseUrl((*stored)->url);
    if (stored_url && *stored_url == connection.base_url) same_server = &**stored;
  }

  if (key_id->has_value()) {
    connection.api_key_id = **key_id;
    connection.api_secret_key = **secret;
  } else if (same_server != nullptr && !same_server->api_key_id.empty() &&
             !same_server->api_secret_key.empty()) {
    connection.api_key_id = same_server->api_key_id;
    connection.api_secret_key = same_server->api_secret_key;
  } else {
    return MakeError(ErrorCode::kUnauthenticated,
                     MissingCredentialsMessage(connection.base_url, path->string()));
  }

  std::string pin;
  if (same_server != nullptr && !same_server->fingerprint_sha256.empty()) {
    std::optional<std::string> normalized = NormalizeFingerprint(same_server->fingerprint_sha256);
    if (!normalized) {
      return MakeError(ErrorCode::kValidationFailed,
                       path->string() +
                           ": fingerprintSha256 is not a SHA-256 fingerprint; run "
                           "`puddle login` again");
    }
    pin = *normalized;
  }
  connection.tls = ChooseTlsPolicy(env, options, pin, same_server ? same_server->ca_cert : "");
  return connection;
}

}  // namespace puddle::cli
