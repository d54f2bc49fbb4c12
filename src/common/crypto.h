// Hashing, random secrets, password hashing and sealing, over libsodium and OpenSSL.
//
// All functions are thread-safe once InitCrypto() has returned.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace puddle {

// Initialises libsodium. Call once at start-up before any other function here.
Status InitCrypto();

// Returns `bytes` random bytes encoded as unpadded base64url.
std::string RandomToken(size_t bytes = 32);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// Unpadded base64url HMAC-SHA-256 of `message` under `key`.
std::string HmacSha256(std::string_view key, std::string_view message);

// Compares in time that depends only on the lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Hashes a password with argon2id (libsodium's interactive limits).
Result<std::string> HashPassword(std::string_view password);

// Checks `password` against an argon2id hash from HashPassword(). An empty
// `hash` does the same work against a dummy hash and returns false, so an
// unknown user name costs as much as a known one.
bool VerifyPassword(std::string_view password, const std::string& hash);

// Encrypts `plaintext` with XSalsa20-Poly1305 under a key derived from
// `secret`; the result is base64url(nonce || ciphertext).
std::string SealSecret(std::string_view secret, std::string_view plaintext);

// Reverses SealSecret(); nullopt when the box was altered or the secret differs.
std::optional<std::string> OpenSecret(std::string_view secret, std::string_view sealed);

std::string Base64UrlEncode(std::string_view data);
std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace puddle
