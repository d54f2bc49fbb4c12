#include "common/crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sodium.h>

namespace puddle {

Status InitCrypto() {
  if (sodium_init() < 0) return InternalError("libsodium failed to initialise");
  return Ok();
}

std::string Base64UrlEncode(std::string_view data) {
  std::string out(sodium_base64_encoded_len(data.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(data.data()),
                    data.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1);  // drop the terminating NUL
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  std::string out(text.size(), '\0');
  size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &length, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    return std::nullopt;
  }
  out.resize(length);
  return out;
}

std::string RandomToken(size_t bytes) {
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  return Base64UrlEncode(raw);
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof digest);
  for (unsigned char byte : digest) {
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0xf]);
  }
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  return Base64UrlEncode(std::string_view(reinterpret_cast<char*>(digest), length));
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<std::string> HashPassword(std::string_view password) {
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(hash, password.data(), password.size(),
                        crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return InternalError("argon2id hashing failed: out of memory");
  }
  return std::string(hash);
}

namespace {

// A hash of a random password, made once, to spend the same work on unknown users.
const std::string& DummyHash() {
  static const std::string hash = [] {
    auto made = HashPassword(RandomToken(16));
    return made ? *made : std::string();
  }();
  return hash;
}

void DeriveSealKey(std::string_view secret, unsigned char key[crypto_secretbox_KEYBYTES]) {
  static constexpr std::string_view kContext = "puddle seal v1";
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(kContext.data()), kContext.size(), key, &length);
}

}  // namespace

bool VerifyPassword(std::string_view password, const std::string& hash) {
  const std::string& checked = hash.empty() ? DummyHash() : hash;
  bool matches =
      crypto_pwhash_str_verify(checked.c_str(), password.data(), password.size()) == 0;
  return matches && !hash.empty();
}

std::string SealSecret(std::string_view secret, std::string_view plaintext) {
  unsigned char key[crypto_secretbox_KEYBYTES];
  DeriveSealKey(secret, key);
  std::string box(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plaintext.size(), '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(box.data());
  randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(nonce + crypto_secretbox_NONCEBYTES,
                        reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
                        nonce, key);
  sodium_memzero(key, sizeof key);
  return Base64UrlEncode(box);
}

std::optional<std::string> OpenSecret(std::string_view secret, std::string_view sealed) {
  auto box = Base64UrlDecode(sealed);
  if (!box || box->size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
    return std::nullopt;
  }
  unsigned char key[crypto_secretbox_KEYBYTES];
  DeriveSealKey(secret, key);
  auto* nonce = reinterpret_cast<const unsigned char*>(box->data());
  size_t cipher_length = box->size() - crypto_secretbox_NONCEBYTES;
  std::string plain(cipher_length - crypto_secretbox_MACBYTES, '\0');
  int rc = crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()),
                                      nonce + crypto_secretbox_NONCEBYTES, cipher_length, nonce,
                                      key);
  sodium_memzero(key, sizeof key);
  if (rc != 0) return std::nullopt;
  return plain;
}

}  // namespace puddle
