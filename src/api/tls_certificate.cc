#include "api/tls_certificate.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/log.h"

namespace puddle {
namespace {

template <auto Free>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* pointer) const {
    Free(pointer);
  }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY_free>>;
using CertificatePtr = std::unique_ptr<X509, OpenSslDeleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<BN_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslDeleter<X509_EXTENSION_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpenSslDeleter<GENERAL_NAMES_free>>;

// 10 years, counting the leap days in between.
constexpr int kValidityDays = 3653;
// Backdates notBefore so clients with a clock slightly behind accept it.
constexpr long kBackdateSeconds = 3600;
constexpr size_t kMaxCommonNameLength = 64;  // ub-common-name, RFC 5280

// Returns and clears OpenSSL's error queue as one line.
std::string OpenSslErrors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

tl::unexpected<Error> OpenSslFailure(std::string_view step) {
  return InternalError("self-signed certificate: " + std::string(step) + ": " + OpenSslErrors());
}

// Accepts letters, digits and hyphens in dot-separated labels, with "*" as
// a whole leftmost label followed by at least two more labels.
bool IsValidDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t labels = 0;
  bool wildcard = false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view label = name.substr(start, end - start);
    if (label.empty() || label.size() > 63) return false;
    if (label == "*" && labels == 0) {
      wildcard = true;
    } else {
      for (char c : label) {
        bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       (c >= '0' && c <= '9') || c == '-';
        if (!allowed) return false;
      }
    }
    ++labels;
    start = end + 1;
  }
  return !wildcard || labels >= 3;
}

Result<GeneralNamesPtr> SubjectAlternativeNames(const std::vector<std::string>& dns_names,
                                                const std::vector<std::string>& ip_addresses) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  for (const std::string& dns_name : dns_names) {
    if (!IsValidDnsName(dns_name)) {
      return MakeError(ErrorCode::kValidationFailed,
                       "invalid DNS name '" + dns_name + "' for the TLS certificate");
    }
    ASN1_IA5STRING* text = ASN1_IA5STRING_new();
    ASN1_STRING_set(text, dns_name.data(), static_cast<int>(dns_name.size()));
    GENERAL_NAME* name = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(name, GEN_DNS, text);
    sk_GENERAL_NAME_push(names.get(), name);
  }
  for (const std::string& ip_address : ip_addresses) {
    unsigned char bytes[16];
    int length = 0;
    if (inet_pton(AF_INET, ip_address.c_str(), bytes) == 1) {
      length = 4;
    } else if (inet_pton(AF_INET6, ip_address.c_str(), bytes) == 1) {
      length = 16;
    } else {
      return MakeError(ErrorCode::kValidationFailed,
                       "invalid IP address '" + ip_address + "' for the TLS certificate");
    }
    ASN1_OCTET_STRING* octets = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(octets, bytes, length);
    GENERAL_NAME* name = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(name, GEN_IPADD, octets);
    sk_GENERAL_NAME_push(names.get(), name);
  }
  return names;
}

Status AddExtension(X509* certificate, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, certificate, certificate, nullptr, nullptr, 0);
  ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value));
  if (!extension || X509_add_ext(certificate, extension.get(), -1) != 1) {
    return OpenSslFailure(std::string("add extension ") + OBJ_nid2sn(nid));
  }
  return Ok();
}

Status SetSubject(X509* certificate, const std::vector<std::string>& dns_names) {
  std::string common_name = "Puddle";
  if (!dns_names.empty() && dns_names.front().size() <= kMaxCommonNameLength) {
    common_name = dns_names.front();
  }
  X509_NAME* subject = X509_get_subject_name(certificate);
  auto add = [&](const char* field, const std::string& value) {
    return X509_NAME_add_entry_by_txt(subject, field, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.c_str()), -1,
                                      -1, 0) == 1;
  };
  if (!add("O", "Puddle self-signed") || !add("CN", common_name)) {
    return OpenSslFailure("set subject");
  }
  if (X509_set_issuer_name(certificate, subject) != 1) return OpenSslFailure("set issuer");
  return Ok();
}

Status SetSerialAndValidity(X509* certificate) {
  // A random positive serial below 2^127, as RFC 5280 allows at most 20 bytes.
  BignumPtr serial(BN_new());
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(certificate))) {
    return OpenSslFailure("set serial number");
  }
  if (!X509_gmtime_adj(X509_getm_notBefore(certificate), -kBackdateSeconds) ||
      !X509_time_adj_ex(X509_getm_notAfter(certificate), kValidityDays, 0, nullptr)) {
    return OpenSslFailure("set validity");
  }
  return Ok();
}

Result<std::string> ToPem(const std::function<int(BIO*)>& write, std::string_view what) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) return OpenSslFailure("encode " + std::string(what));
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

struct PemPair {
  std::string certificate;
  std::string key;
};

Result<PemPair> GenerateCertificate(const std::vector<std::string>& dns_names,
                                    const std::vector<std::string>& ip_addresses) {
  if (dns_names.empty() && ip_addresses.empty()) {
    return MakeError(ErrorCode::kValidationFailed,
                     "a TLS certificate needs at least one DNS name or IP address");
  }
  auto alternative_names = SubjectAlternativeNames(dns_names, ip_addresses);
  if (!alternative_names) return tl::unexpected(alternative_names.error());

  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslFailure("generate P-256 key");
  CertificatePtr certificate(X509_new());
  if (!certificate || X509_set_version(certificate.get(), X509_VERSION_3) != 1 ||
      X509_set_pubkey(certificate.get(), key.get()) != 1) {
    return OpenSslFailure("create certificate");
  }
  if (Status status = SetSerialAndValidity(certificate.get()); !status) {
    return tl::unexpected(status.error());
  }
  if (Status status = SetSubject(certificate.get(), dns_names); !status) {
    return tl::unexpected(status.error());
  }

  // A server certificate that is not a CA; clients trust it by pinning the file.
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_ext_key_usage, "serverAuth"}}) {
    if (Status status = AddExtension(certificate.get(), nid, value); !status) {
      return tl::unexpected(status.error());
    }
  }
  if (X509_add1_ext_i2d(certificate.get(), NID_subject_alt_name, alternative_names->get(), 0,
                        X509V3_ADD_DEFAULT) != 1) {
    return OpenSslFailure("add subjectAltName");
  }
  if (X509_sign(certificate.get(), key.get(), EVP_sha256()) == 0) {
    return OpenSslFailure("sign certificate");
  }

  PemPair pair;
  auto certificate_pem = ToPem(
      [&](BIO* bio) { return PEM_write_bio_X509(bio, certificate.get()); }, "certificate");
  auto key_pem = ToPem(
      [&](BIO* bio) {
        return PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
      },
      "private key");
  if (!certificate_pem) return tl::unexpected(certificate_pem.error());
  if (!key_pem) return tl::unexpected(key_pem.error());
  pair.certificate = std::move(*certificate_pem);
  pair.key = std::move(*key_pem);
  return pair;
}

tl::unexpected<Error> FileError(std::string_view step, const std::string& path, int error_number) {
  return InternalError(std::string(step) + " " + path + ": " + std::strerror(error_number));
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::string ParentFolder(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// Writes `data` to a new file beside `path` and renames it over `path`, so a
// reader sees the old content or the whole new content, never a part.
Status WriteFileAtomically(const std::string& path, std::string_view data, mode_t mode) {
  std::string temporary = path + ".tmp-XXXXXX";
  FileDescriptor file(mkstemp(temporary.data()));
  if (file.get() < 0) return FileError("create temporary file for", path, errno);
  auto fail = [&](std::string_view step) {
    int error_number = errno;
    ::unlink(temporary.c_str());
    return FileError(step, temporary, error_number);
  };

  if (fchmod(file.get(), mode) != 0) return fail("set mode of");
  for (size_t written = 0; written < data.size();) {
    ssize_t result = ::write(file.get(), data.data() + written, data.size() - written);
    if (result < 0 && errno == EINTR) continue;
    if (result < 0) return fail("write");
    written += static_cast<size_t>(result);
  }
  if (fsync(file.get()) != 0) return fail("flush");
  if (::close(file.release()) != 0) return fail("close");
  if (std::rename(temporary.c_str(), path.c_str()) != 0) return fail("rename into place");

  // Make the rename itself durable.
  FileDescriptor folder(::open(ParentFolder(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (folder.get() >= 0) fsync(folder.get());
  return Ok();
}

bool FileExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// False when the certificate at `cert_path` lacks one of `dns_names` and
// `ip_addresses` among its subject alternative names. True when it cannot be
// read as PEM: such a file is not one Puddle generated, and stays.
bool CoversNames(const std::string& cert_path, const std::vector<std::string>& dns_names,
                 const std::vector<std::string>& ip_addresses) {
  BioPtr bio(BIO_new_file(cert_path.c_str(), "r"));
  if (!bio) return true;
  CertificatePtr certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!certificate) {
    ERR_clear_error();
    return true;
  }
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate.get(), NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return dns_names.empty() && ip_addresses.empty();

  std::vector<std::string> dns_present;
  std::vector<std::string> ip_present;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* text = name->d.dNSName;
      std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                        ASN1_STRING_length(text));
      for (char& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      dns_present.push_back(std::move(value));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* bytes = name->d.iPAddress;
      ip_present.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(bytes)),
                              ASN1_STRING_length(bytes));
    }
  }
  for (std::string wanted : dns_names) {
    for (char& c : wanted) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (std::find(dns_present.begin(), dns_present.end(), wanted) == dns_present.end()) {
      return false;
    }
  }
  for (const std::string& wanted : ip_addresses) {
    unsigned char packed[16];
    std::string binary;
    if (inet_pton(AF_INET, wanted.c_str(), packed) == 1) {
      binary.assign(reinterpret_cast<const char*>(packed), 4);
    } else if (inet_pton(AF_INET6, wanted.c_str(), packed) == 1) {
      binary.assign(reinterpret_cast<const char*>(packed), 16);
    } else {
      return false;
    }
    if (std::find(ip_present.begin(), ip_present.end(), binary) == ip_present.end()) return false;
  }
  return true;
}

}  // namespace

Status EnsureSelfSignedCertificate(const std::string& cert_path, const std::string& key_path,
                                   const std::vector<std::string>& dns_names,
                                   const std::vector<std::string>& ip_addresses) {
  if (FileExists(cert_path) && FileExists(key_path) &&
      CoversNames(cert_path, dns_names, ip_addresses)) {
    return Ok();
  }

  // Create the folders, then hold the key folder's lock while checking again,
  // so that of two processes starting together only one writes the pair.
  for (const std::string& path : {cert_path, key_path}) {
    std::error_code error;
    std::filesystem::create_directories(ParentFolder(path), error);
    if (error) return InternalError("create folder for " + path + ": " + error.message());
  }
  std::string key_folder = ParentFolder(key_path);
  FileDescriptor lock(::open(key_folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (lock.get() < 0) return FileError("open folder", key_folder, errno);
  if (flock(lock.get(), LOCK_EX) != 0) return FileError("lock folder", key_folder, errno);
  bool cert_exists = FileExists(cert_path);
  bool key_exists = FileExists(key_path);
  if (cert_exists && key_exists) {
    if (CoversNames(cert_path, dns_names, ip_addresses)) return Ok();
    // Names change with backend.baseUrl and proxy.systemsDomain.
    log::Info("replacing the generated TLS certificate, which lacks names Puddle now serves",
              {{"path", cert_path}});
  } else if (cert_exists || key_exists) {
    log::Warning("replacing a TLS certificate or key whose counterpart is missing",
                 {{"path", cert_exists ? cert_path : key_path}});
  }

  auto pair = GenerateCertificate(dns_names, ip_addresses);
  if (!pair) return tl::unexpected(pair.error());
  // The key goes first: a crash in between leaves the certificate missing,
  // so the next start generates a new pair.
  if (Status written = WriteFileAtomically(key_path, pair->key, 0600); !written) return written;
  if (Status written = WriteFileAtomically(cert_path, pair->certificate, 0600); !written) {
    return written;
  }
  log::Info("generated a self-signed TLS certificate", {{"path", cert_path}});
  return Ok();
}

Result<std::string> CertificateSha256Fingerprint(const std::string& cert_pem_path) {
  BioPtr bio(BIO_new_file(cert_pem_path.c_str(), "r"));
  if (!bio) return FileError("open certificate", cert_pem_path, errno);
  CertificatePtr certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!certificate) {
    ERR_clear_error();
    return InternalError("read certificate " + cert_pem_path + ": no PEM certificate in the file");
  }

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(certificate.get(), EVP_sha256(), digest, &length) != 1) {
    return OpenSslFailure("hash certificate " + cert_pem_path);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0x0f];
  }
  return hex;
}

}  // namespace puddle
