// The self-signed certificate Puddle serves when no certificate is configured.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace puddle {

// Creates an ECDSA P-256 key and a self-signed X.509 v3 certificate, valid
// for 10 years from an hour ago, when `cert_path` or `key_path` is missing.
// The certificate's subject alternative names are `dns_names` and
// `ip_addresses`. A DNS name may start with a "*." label, as in
// "*.systems.localhost", and IP addresses are IPv4 or IPv6 literals. The
// common name is the first DNS name. It is not a CA
// certificate, so a client trusts it by using the file itself as its CA file
// (curl --cacert cert.pem).
//
// Does nothing when both files exist and the certificate names every one of
// `dns_names` and `ip_addresses`; a certificate lacking one of them (the
// names changed with the config) is replaced by a new pair. A file that is
// not a PEM certificate is left alone. When only one file exists, a new pair replaces it, since a key
// without its certificate (or the reverse) is of no use. Missing parent folders are created. Each file is
// written to a temporary file and renamed into place, both with mode 0600
// because everything in Puddle's data directory is private to it. An
// exclusive lock on the key's folder keeps two processes from writing a
// mismatched pair.
//
// Returns validation_failed naming a malformed DNS name or IP address, and
// internal naming the path when a file cannot be written.
Status EnsureSelfSignedCertificate(const std::string& cert_path, const std::string& key_path,
                                   const std::vector<std::string>& dns_names,
                                   const std::vector<std::string>& ip_addresses);

// Returns the SHA-256 of the DER encoding of the first certificate in the PEM
// file at `cert_pem_path`, as 64 lower-case hex digits without separators.
Result<std::string> CertificateSha256Fingerprint(const std::string& cert_pem_path);

}  // namespace puddle
