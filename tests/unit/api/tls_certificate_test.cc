// EnsureSelfSignedCertificate and CertificateSha256Fingerprint, checked by
// reading the files back with OpenSSL and the openssl command.
#include "api/tls_certificate.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "test_clients.h"

namespace puddle {
namespace {

using testing::TempDir;

struct X509Deleter {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
using CertificatePtr = std::unique_ptr<X509, X509Deleter>;

CertificatePtr ReadCertificate(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return nullptr;
  CertificatePtr certificate(PEM_read_X509(file, nullptr, nullptr, nullptr));
  std::fclose(file);
  return certificate;
}

EVP_PKEY* ReadKey(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return nullptr;
  EVP_PKEY* key = PEM_read_PrivateKey(file, nullptr, nullptr, nullptr);
  std::fclose(file);
  return key;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

mode_t ModeOf(const std::string& path) {
  struct stat info {};
  stat(path.c_str(), &info);
  return info.st_mode & 0777;
}

// Returns the certificate's subject alternative names as "DNS:x" and "IP:y".
std::set<std::string> AlternativeNames(X509* certificate) {
  std::set<std::string> names;
  auto* general_names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; i < sk_GENERAL_NAME_num(general_names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(general_names, i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* text = name->d.dNSName;
      names.insert("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                                        ASN1_STRING_length(text)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* bytes = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {0};
      int family = ASN1_STRING_length(bytes) == 4 ? AF_INET : AF_INET6;
      inet_ntop(family, ASN1_STRING_get0_data(bytes), text, sizeof(text));
      names.insert(std::string("IP:") + text);
    }
  }
  GENERAL_NAMES_free(general_names);
  return names;
}

class TlsCertificateTest : public ::testing::Test {
 protected:
  Status Ensure() {
    return EnsureSelfSignedCertificate(cert_, key_, {"localhost", "*.systems.localhost"},
                                       {"127.0.0.1", "::1"});
  }

  TempDir dir_;
  std::string cert_ = dir_.File("tls/cert.pem");
  std::string key_ = dir_.File("tls/key.pem");
};

TEST_F(TlsCertificateTest, GeneratesCertificateWithNames) {
  Status made = Ensure();

  ASSERT_TRUE(made) << made.error().message;
  CertificatePtr certificate = ReadCertificate(cert_);
  ASSERT_NE(certificate, nullptr);
  EXPECT_EQ(AlternativeNames(certificate.get()),
            (std::set<std::string>{"DNS:localhost", "DNS:*.systems.localhost", "IP:127.0.0.1",
                                   "IP:::1"}));
  EXPECT_EQ(X509_get_version(certificate.get()), X509_VERSION_3);
  EXPECT_EQ(X509_check_host(certificate.get(), "box-1.systems.localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(certificate.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ca(certificate.get()), 0);
}

TEST_F(TlsCertificateTest, UsesP256KeyAndTenYearValidity) {
  ASSERT_TRUE(Ensure());
  CertificatePtr certificate = ReadCertificate(cert_);
  ASSERT_NE(certificate, nullptr);
  EVP_PKEY* key = ReadKey(key_);
  ASSERT_NE(key, nullptr);

  char group[64] = {0};
  EVP_PKEY_get_group_name(key, group, sizeof(group), nullptr);
  EXPECT_EQ(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
  EXPECT_STREQ(group, "prime256v1");
  EXPECT_EQ(X509_check_private_key(certificate.get(), key), 1);
  EXPECT_EQ(X509_verify(certificate.get(), key), 1) << "not self-signed by its key";
  int days = 0;
  int seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(certificate.get()),
                           X509_get0_notAfter(certificate.get())),
            1);
  EXPECT_GE(days, 3652);
  EXPECT_LE(days, 3654);
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(certificate.get())), 0);
  EVP_PKEY_free(key);
}

TEST_F(TlsCertificateTest, WritesKeyPrivately) {
  ASSERT_TRUE(Ensure());

  EXPECT_EQ(ModeOf(key_), 0600u);
  EXPECT_EQ(ModeOf(cert_), 0600u);
  // No temporary files are left beside them.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir_.File("tls"))) {
    ++entries;
  }
  EXPECT_EQ(entries, 2u);
}

TEST_F(TlsCertificateTest, LeavesExistingFilesAlone) {
  std::filesystem::create_directories(dir_.File("tls"));
  std::ofstream(cert_) << "operator's certificate";
  std::ofstream(key_) << "operator's key";

  ASSERT_TRUE(Ensure());

  EXPECT_EQ(ReadFile(cert_), "operator's certificate");
  EXPECT_EQ(ReadFile(key_), "operator's key");
}

TEST_F(TlsCertificateTest, SecondCallChangesNothing) {
  ASSERT_TRUE(Ensure());
  std::string cert = ReadFile(cert_);
  std::string key = ReadFile(key_);

  ASSERT_TRUE(Ensure());

  EXPECT_EQ(ReadFile(cert_), cert);
  EXPECT_EQ(ReadFile(key_), key);
}

TEST_F(TlsCertificateTest, ReplacesCertificateLackingANewName) {
  ASSERT_TRUE(Ensure());
  std::string old_cert = ReadFile(cert_);

  // backend.baseUrl was set after the first start.
  ASSERT_TRUE(EnsureSelfSignedCertificate(
      cert_, key_, {"localhost", "*.systems.localhost", "puddle.example.com"},
      {"127.0.0.1", "::1"}));

  EXPECT_NE(ReadFile(cert_), old_cert);
  CertificatePtr certificate = ReadCertificate(cert_);
  ASSERT_NE(certificate, nullptr);
  EXPECT_EQ(X509_check_host(certificate.get(), "puddle.example.com", 0, 0, nullptr), 1);
  EVP_PKEY* key = ReadKey(key_);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(certificate.get(), key), 1);
  EVP_PKEY_free(key);

  // The same names again change nothing.
  std::string new_cert = ReadFile(cert_);
  ASSERT_TRUE(EnsureSelfSignedCertificate(
      cert_, key_, {"localhost", "*.systems.localhost", "puddle.example.com"},
      {"127.0.0.1", "::1"}));
  EXPECT_EQ(ReadFile(cert_), new_cert);
}

TEST_F(TlsCertificateTest, ReplacesPairWhenKeyIsMissing) {
  ASSERT_TRUE(Ensure());
  std::string old_cert = ReadFile(cert_);
  std::filesystem::remove(key_);

  ASSERT_TRUE(Ensure());

  EXPECT_NE(ReadFile(cert_), old_cert);
  CertificatePtr certificate = ReadCertificate(cert_);
  EVP_PKEY* key = ReadKey(key_);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(certificate.get(), key), 1);
  EVP_PKEY_free(key);
}

TEST_F(TlsCertificateTest, RejectsInvalidNames) {
  struct Case {
    std::vector<std::string> dns_names;
    std::vector<std::string> ip_addresses;
    std::string named;
  };
  for (const Case& test : {Case{{"bad name"}, {}, "bad name"},
                           Case{{"a.*.example"}, {}, "a.*.example"},
                           Case{{"*.localhost"}, {}, "*.localhost"},
                           Case{{"dns,IP:1.2.3.4"}, {}, "dns,IP:1.2.3.4"},
                           Case{{"localhost"}, {"999.1.1.1"}, "999.1.1.1"},
                           Case{{}, {}, "at least one"}}) {
    Status made = EnsureSelfSignedCertificate(cert_, key_, test.dns_names, test.ip_addresses);

    ASSERT_FALSE(made) << test.named;
    EXPECT_EQ(made.error().code, ErrorCode::kValidationFailed) << test.named;
    EXPECT_NE(made.error().message.find(test.named), std::string::npos) << made.error().message;
    EXPECT_FALSE(std::filesystem::exists(cert_));
    EXPECT_FALSE(std::filesystem::exists(key_));
  }
}

TEST_F(TlsCertificateTest, FingerprintMatchesOpensslCommand) {
  ASSERT_TRUE(Ensure());
  std::string command = "openssl x509 -noout -fingerprint -sha256 -in '" + cert_ + "'";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char line[256] = {0};
  ASSERT_NE(fgets(line, sizeof(line), pipe), nullptr);
  pclose(pipe);
  // "sha256 Fingerprint=AB:CD:..." becomes "abcd...".
  std::string expected;
  for (const char* c = std::strchr(line, '=') + 1; *c != '\0' && *c != '\n'; ++c) {
    if (*c != ':') expected += static_cast<char>(std::tolower(static_cast<unsigned char>(*c)));
  }

  auto fingerprint = CertificateSha256Fingerprint(cert_);

  ASSERT_TRUE(fingerprint) << fingerprint.error().message;
  EXPECT_EQ(*fingerprint, expected);
  EXPECT_EQ(fingerprint->size(), 64u);
}

TEST_F(TlsCertificateTest, FingerprintNamesUnreadableFile) {
  std::filesystem::create_directories(dir_.File("tls"));
  std::ofstream(cert_) << "not a certificate";

  auto missing = CertificateSha256Fingerprint(dir_.File("nothing.pem"));
  auto garbage = CertificateSha256Fingerprint(cert_);

  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nothing.pem"), std::string::npos);
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().message.find(cert_), std::string::npos);
}

}  // namespace
}  // namespace puddle
