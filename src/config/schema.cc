// The config.yaml schema. Every key Puddle accepts is declared here once.
#include "config/schema.h"

#include <algorithm>
#include <map>
#include <set>

#include "config/readers.h"

namespace puddle::config {
namespace {

using T = ValueType;

constexpr bool kSecret = true;

// Stores an integer key that must lie in [minimum, maximum].
std::optional<ValueProblem> ReadIntInRange(const ConfigValue& value, int64_t minimum,
                                           int64_t maximum, int64_t& field) {
  if (value.number < minimum || value.number > maximum) {
    return ValueProblem{"invalid value " + std::to_string(value.number) + ": must be between " +
                        std::to_string(minimum) + " and " + std::to_string(maximum)};
  }
  field = value.number;
  return std::nullopt;
}

std::optional<ValueProblem> ReadIdleWarningMinutes(const ConfigValue& value, Config& config) {
  return ReadIntInRange(value, 1, 1440, config.idle_warning_minutes);
}

std::optional<ValueProblem> ReadIdleCheckIntervalSeconds(const ConfigValue& value,
                                                         Config& config) {
  return ReadIntInRange(value, 1, 3600, config.idle_check_interval_seconds);
}

std::optional<ValueProblem> ReadCpuBusyPercent(const ConfigValue& value, Config& config) {
  return ReadIntInRange(value, 1, 100000, config.cpu_busy_percent);
}

std::optional<ValueProblem> ReadCpuWindowMinutes(const ConfigValue& value, Config& config) {
  return ReadIntInRange(value, 1, 1440, config.cpu_window_minutes);
}

PartDefinition UsedPart() {
  return {
      .name = "",
      .key_class = KeyClass::kUsed,
      .reason = "",
      .keys = {
          {.key = "dataDir",
           .type = T::kString,
           .default_value = "./puddle-data",
           .meaning = "Directory holding the SQLite database, the generated TLS certificate and "
                      "each system's files; relative to the working directory. PUDDLE_DATA_DIR "
                      "overrides it.",
           .read = ReadDataDir},
          {.key = "listen",
           .type = T::kString,
           .default_value = "127.0.0.1:8443",
           .meaning = "host:port the HTTPS server listens on. PUDDLE_LISTEN overrides it.",
           .read = ReadListen},
          {.key = "tls.certFile",
           .type = T::kString,
           .meaning = "PEM certificate (chain) for HTTPS. Set both tls keys or neither; without "
                      "them Puddle generates a self-signed certificate under dataDir.",
           .read = ReadTlsCertFile,
           .example = "/etc/puddle/tls/cert.pem"},
          {.key = "tls.keyFile",
           .type = T::kString,
           .meaning = "PEM private key of tls.certFile, not password-protected.",
           .read = ReadTlsKeyFile,
           .example = "/etc/puddle/tls/private_key.pem"},
          {.key = "auth.token.secret",
           .type = T::kString,
           .meaning = "Key for what Puddle signs or seals (CSRF tokens, sealed product tokens), "
                      "at least 16 characters, such as the output of `openssl rand -hex 32`. "
                      "When unset, Puddle generates one and keeps it in the database. Changing "
                      "it signs browsers out.",
           .secret = kSecret,
           .read = ReadTokenSecret,
           .example = "CHANGEME"},
          {.key = "auth.apiKeys.enabled",
           .type = T::kBool,
           .default_value = "true",
           .meaning = "Users may create API keys and exchange them for tokens.",
           .read = ReadApiKeysEnabled},
          {.key = "backend.baseUrl",
           .type = T::kString,
           .meaning = "Public URL of Puddle, http(s)://host[:port] with no path. Puddle "
                      "answers only for its host (and 127.0.0.1, ::1); its port is used in "
                      "system URLs and its host in the generated certificate.",
           .alternatives = {"backend.baseURL"},
           .read = ReadBaseUrl,
           .example = "https://puddle.example.com"},
          {.key = "connections.usePublicIP",
           .type = T::kBool,
           .default_value = "true",
           .meaning = "A cloud system's directUrl uses its public IP address (true) or its "
                      "private one (false).",
           .alternatives = {"backend.connections.usePublicIP"},
           .read = ReadUsePublicIp},
          {.key = "proxy.systemsDomain",
           .type = T::kString,
           .default_value = "systems.localhost",
           .meaning = "Domain whose subdomains give each system its own origin, "
                      "https://<id>.<systemsDomain>. Every subdomain must reach Puddle; the "
                      "default resolves only on this host.",
           .read = ReadSystemsDomain},
          {.key = "trustedProxies",
           .type = T::kStringList,
           .default_value = "[]",
           .meaning = "IP addresses or CIDR ranges of reverse proxies whose last "
                      "X-Forwarded-For hop is taken as the client address.",
           .read = ReadTrustedProxies},
          {.key = "idleTimeout.options",
           .type = T::kLabelMinutesMap,
           .default_value = "{30min: 30, 1h: 60, 2h: 120, 3h: 180, 4h: 240, Never: -1}",
           .meaning = "Idle time-outs users choose from, label: minutes, in the order shown; "
                      "-1 means never. The first is the default.",
           .read = ReadIdleTimeoutOptions},
          {.key = "idleTimeout.maxKeepAliveMinutes",
           .type = T::kInt,
           .default_value = "240",
           .meaning = "Default and maximum minutes a keep-alive postpones a pending idle or "
                      "max-uptime stop.",
           .read = ReadMaxKeepAliveMinutes},
          {.key = "idleTimeout.warningMinutes",
           .type = T::kInt,
           .default_value = "10",
           .meaning = "Minutes before an idle or max-uptime stop that the system's events get a "
                      "warning; at most half the time-out, so a 30-minute time-out warns after "
                      "20 idle minutes and a 1-minute one after 30 seconds.",
           .read = ReadIdleWarningMinutes},
          {.key = "idleTimeout.checkIntervalSeconds",
           .type = T::kInt,
           .default_value = "30",
           .meaning = "Seconds between two checks of the running systems' activity (Jupyter "
                      "kernels, CPU time), warnings and idle or max-uptime stops.",
           .read = ReadIdleCheckIntervalSeconds},
          {.key = "idleTimeout.cpuBusyPercent",
           .type = T::kInt,
           .default_value = "10",
           .meaning = "A system whose processes use more than this percent of one CPU core, "
                      "averaged over idleTimeout.cpuWindowMinutes, is busy and does not stop "
                      "for being idle.",
           .read = ReadCpuBusyPercent},
          {.key = "idleTimeout.cpuWindowMinutes",
           .type = T::kInt,
           .default_value = "5",
           .meaning = "Minutes over which the CPU use of idleTimeout.cpuBusyPercent is averaged.",
           .read = ReadCpuWindowMinutes},
          {.key = "costs.currency",
           .type = T::kString,
           .default_value = "USD",
           .meaning = "ISO 4217 code of the currency of prices and costs.",
           .read = ReadCurrency},
          {.key = "costs.budget.stopRunningSystems",
           .type = T::kBool,
           .default_value = "false",
           .meaning = "Stop the running systems of users who have used up their monthly "
                      "budget (operation reason budget). Creating and starting is refused "
                      "either way.",
           .read = [](const ConfigValue& value, Config& config) -> std::optional<ValueProblem> {
             config.budget_stop_running_systems = value.flag;
             return std::nullopt;
           }},
          {.key = "vmNameRegexp",
           .type = T::kString,
           .default_value = "'^[-0-9a-z]*[0-9a-z]$'",
           .meaning = "Regular expression (ECMAScript syntax) that system names must match; "
                      "names are also 1 to 63 characters long.",
           .read = ReadVmNameRegexp},
          {.key = "workers",
           .type = T::kInt,
           .default_value = "10",
           .meaning = "Number of job workers in each Puddle process (the original's "
                      "redis.workersCount default).",
           .alternatives = {"redis.workersCount"},
           .read = ReadWorkers},
          {.key = "logs.level",
           .type = T::kString,
           .default_value = "info",
           .meaning = "Lowest level logged: trace, debug, info, warn (or warning) or error. "
                      "trace logs as debug, Puddle's most detailed level.",
           .read = ReadLogLevel},
          {.key = "providers.local.enabled",
           .type = T::kBool,
           .meaning = "Run systems as processes on this host. When unset, on unless another "
                      "provider is enabled.",
           .read = ReadLocalEnabled,
           .example = "true"},
          {.key = "providers.local.uidRange",
           .type = T::kRange,
           .default_value = "200000-265535",
           .meaning = "Unprivileged uids that systems' processes run as, \"min-max\" or "
                      "[min, max]; it must not hold a uid listed in /etc/passwd, and never 0.",
           .read = ReadLocalUidRange},
          {.key = "providers.local.stopGraceSeconds",
           .type = T::kInt,
           .default_value = "10",
           .meaning = "Seconds between SIGTERM and SIGKILL when a local system stops.",
           .read = ReadLocalStopGraceSeconds},
          {.key = "providers.local.listenAddress",
           .type = T::kString,
           .default_value = "127.0.0.2",
           .meaning = "IP address local products listen on when they share the host's network "
                      "namespace (see providers.local.network.isolation); never an address "
                      "Puddle itself is served on.",
           .read = ReadLocalListenAddress},
          {.key = "providers.local.portRange",
           .type = T::kRange,
           .default_value = "20000-29999",
           .meaning = "Ports handed to local products, \"min-max\" or [min, max]; keep it "
                      "outside the kernel's ephemeral port range.",
           .read = ReadLocalPortRange},
          {.key = "providers.local.network.requireFirewall",
           .type = T::kBool,
           .default_value = "false",
           .meaning = "Refuse to start when the iptables rules that keep local systems from the "
                      "cloud metadata address, Puddle's own port and other systems' products "
                      "cannot be installed. When false, Puddle logs a warning and starts "
                      "without them.",
           .read = ReadLocalRequireFirewall},
          {.key = "providers.local.network.isolation",
           .type = T::kBool,
           .default_value = "true",
           .meaning = "Run each local system in its own network namespace, joined to the host by "
                      "a veth pair: its product listens on the namespace's address, which only "
                      "Puddle reaches, and it reaches only providers.local.network.allow. Never "
                      "reachable, even when allow names them: 169.254.0.0/16 (the cloud "
                      "metadata address), Puddle's own port, database and Redis, every service "
                      "of this host and other systems. Needs root, iproute2's ip and iptables; "
                      "without them, or when false, products listen on "
                      "providers.local.listenAddress and only the uid-range firewall applies, "
                      "which start-up logs.",
           .read = ReadLocalNetworkIsolation},
          {.key = "providers.local.network.cidr",
           .type = T::kString,
           .default_value = "10.213.0.0/16",
           .meaning = "IPv4 range the systems' network namespaces get their addresses from, one "
                      "/30 each (a /16 serves 16384 systems). Choose a range that no network "
                      "this host reaches uses.",
           .read = ReadLocalNetworkCidr},
          {.key = "providers.local.network.allow",
           .type = T::kStringList,
           .default_value = "[]",
           .meaning = "Destinations beyond this host that local systems may reach, through NAT: "
                      "IPv4 addresses or CIDR ranges (every port), or host:port (TCP and UDP; "
                      "host names are resolved at start-up). Empty: nothing outside the "
                      "system's namespace, so pip or the internet needs an entry here, and a "
                      "name server for host names. Replies arrive on the host's uplink, whose "
                      "forwarding must be on (sysctl net.ipv4.conf.<interface>.forwarding=1); "
                      "Puddle enables forwarding only on the systems' veths and warns about "
                      "uplinks where it is off.",
           .read = ReadLocalNetworkAllow},
          {.key = "providers.local.privateTmp",
           .type = T::kBool,
           .default_value = "true",
           .meaning = "Give each local system its own empty /tmp and /dev/shm (tmpfs mounts the "
                      "host never sees, as large as the system type's memory). Skipped when "
                      "dataDir lies under /tmp.",
           .read = ReadLocalPrivateTmp},
          {.key = "providers.fake.enabled",
           .type = T::kBool,
           .default_value = "false",
           .meaning = "Fake provider for tests and benchmarks; runs no real system, logs a "
                      "warning and cannot be combined with another enabled provider.",
           .read = ReadFakeEnabled},
      }};
}

// The original product's PostgreSQL keys, read while drivername is postgres.
PartDefinition DatabasePart() {
  return {
      .name = "db.connection",
      .key_class = KeyClass::kUsed,
      .reason = "Puddle uses the embedded SQLite store under dataDir, which allows one Puddle "
                "process",
      .feature = "the PostgreSQL store",
      .part_switch = PartSwitch::kKeyEquals,
      .switch_key = "db.connection.drivername",
      .switch_value = "postgres",
      .keys = {
          {.key = "db.connection.drivername",
           .type = T::kString,
           .default_value = "sqlite",
           .meaning = "Store: sqlite (the embedded SQLite file under dataDir, for one Puddle "
                      "process) or postgres (a PostgreSQL server that every serve and worker "
                      "process of the installation shares).",
           .read = ReadDatabaseDriver,
           .example = "postgres"},
          {.key = "db.connection.host",
           .type = T::kString,
           .meaning = "Host name or IP address of the PostgreSQL server; required with "
                      "postgres.",
           .read = ReadDatabaseHost,
           .example = "postgres.example.com"},
          {.key = "db.connection.port",
           .type = T::kInt,
           .default_value = "5432",
           .meaning = "TCP port of the PostgreSQL server.",
           .read = ReadDatabasePort},
          {.key = "db.connection.user",
           .type = T::kString,
           .meaning = "PostgreSQL user Puddle connects as; required with postgres. It needs "
                      "to create tables in the database.",
           .read = ReadDatabaseUser,
           .example = "puddle"},
          {.key = "db.connection.dbname",
           .type = T::kString,
           .default_value = "puddle",
           .meaning = "Database name; the database must exist.",
           .read = ReadDatabaseName},
          {.key = "db.connection.sslmode",
           .type = T::kString,
           .default_value = "require",
           .meaning = "libpq sslmode: disable, allow, prefer, require, verify-ca or "
                      "verify-full. require encrypts the connection without checking the "
                      "server's certificate (unless ~/.postgresql/root.crt exists); "
                      "verify-full also checks the certificate and the host name.",
           .read = ReadDatabaseSslMode},
          {.key = "db.connection.password",
           .type = T::kString,
           .meaning = "Password of the PostgreSQL user. When unset, libpq reads PGPASSWORD "
                      "or ~/.pgpass.",
           .secret = kSecret,
           .read = ReadDatabasePassword,
           .example = "CHANGEME"},
      }};
}

// The original product's Redis keys, read while an address is set.
PartDefinition RedisPart() {
  return {
      .name = "redis.connections",
      .key_class = KeyClass::kUsed,
      .reason = "jobs wake workers through the in-process queue, which only workers in the "
                "same process hear",
      .feature = "the Redis queue",
      .part_switch = PartSwitch::kNonEmptyKey,
      .switch_key = "redis.connections.address",
      .keys = {
          {.key = "redis.connections.protocol",
           .type = T::kString,
           .default_value = "tcp",
           .meaning = "Redis transport: tcp (address is host:port) or unix (address is a "
                      "socket path).",
           .read = ReadRedisProtocol},
          {.key = "redis.connections.address",
           .type = T::kString,
           .meaning = "Redis host:port or socket path. Job ids are published to a Redis Stream "
                      "that every worker process reads; the jobs themselves stay in the "
                      "database.",
           .read = ReadRedisAddress,
           .example = "redis.example.com:6379"},
          {.key = "redis.connections.password",
           .type = T::kString,
           .meaning = "Redis password (AUTH); empty for none.",
           .secret = kSecret,
           .read = ReadRedisPassword,
           .example = "CHANGEME"},
          {.key = "redis.connections.tls",
           .type = T::kBool,
           .default_value = "false",
           .meaning = "Must be false: Puddle's Redis client has no TLS, so keep Redis on a "
                      "private network or on loopback.",
           .read = ReadRedisTls},
      }};
}

std::vector<PartDefinition> RefusedParts() {
  std::vector<PartDefinition> parts;
  parts.push_back(
      {.name = "auth.awsCognito",
       .key_class = KeyClass::kRefused,
       .reason = "AWS Cognito login is not built yet; set auth.awsCognito.enabled to false, or "
                 "remove auth.awsCognito, to sign in with Puddle's own accounts",
       .feature = "AWS Cognito login",
       .part_switch = PartSwitch::kEnabledTrue,
       .switch_key = "auth.awsCognito.enabled",
       .keys = {
           {"auth.awsCognito.enabled", T::kBool, "false", "Sign in with AWS Cognito."},
           {"auth.awsCognito.userPoolId", T::kString, "", "Cognito user pool id."},
           {"auth.awsCognito.userPoolWebClientId", T::kString, "", "Cognito app client id."},
           {"auth.awsCognito.domain", T::kString, "", "Cognito hosted UI domain."},
           {"auth.awsCognito.redirectSignIn", T::kString, "", "Sign-in callback URL."},
           {"auth.awsCognito.redirectSignOut", T::kString, "", "Sign-out URL."},
           {"auth.awsCognito.adminsGroup", T::kString, "Puddle-Administrators",
            "Group whose members are admins."},
           {"auth.awsCognito.usersGroup", T::kString, "Puddle-Users",
            "Group whose members are users."},
           {"auth.awsCognito.implicitGrant", T::kBool, "false",
            "Admit users outside both groups as users."},
       }});
  parts.push_back(
      {.name = "auth.ldap",
       .key_class = KeyClass::kRefused,
       .reason = "LDAP login is not built yet; set auth.ldap.enabled to false, or remove "
                 "auth.ldap, to sign in with Puddle's own accounts",
       .feature = "LDAP login",
       .part_switch = PartSwitch::kEnabledTrue,
       .switch_key = "auth.ldap.enabled",
       .keys = {
           {"auth.ldap.enabled", T::kBool, "false", "Sign in with LDAP."},
           {"auth.ldap.host", T::kString, "", "LDAP server host."},
           {"auth.ldap.port", T::kInt, "389", "LDAP server port."},
           {"auth.ldap.skipTLS", T::kBool, "false", "Do not use TLS."},
           {"auth.ldap.useSSL", T::kBool, "true", "Use LDAPS."},
           {"auth.ldap.insecureSkipVerify", T::kBool, "false", "Skip certificate checks."},
           {"auth.ldap.serverName", T::kString, "", "Name expected in the server certificate."},
           {"auth.ldap.baseDN", T::kString, "", "Search base."},
           {"auth.ldap.bindDN", T::kString, "", "DN to bind as for searches."},
           {"auth.ldap.bindPassword", T::kString, "", "Password of bindDN.", {}, kSecret},
           {"auth.ldap.bindAllowAnonymousLogin", T::kBool, "false", "Bind anonymously."},
           {"auth.ldap.authenticationFilter", T::kString, "(uid=%s)", "Login search filter."},
           {"auth.ldap.authorizationFlow", T::kString, "userAttribute",
            "userAttribute or groupAttribute."},
           {"auth.ldap.authorizationFilter", T::kString, "(memberOf=%s)", "Group filter."},
           {"auth.ldap.authorizationSearchValueAttribute", T::kString, "dn",
            "Attribute used in the group filter."},
           {"auth.ldap.uidAttributeName", T::kString, "uid", "User id attribute."},
           {"auth.ldap.uidNumberAttributeName", T::kString, "uidnumber", "uidNumber attribute."},
           {"auth.ldap.emailAttributeName", T::kString, "email", "E-mail attribute."},
           {"auth.ldap.implicitGrant", T::kBool, "false",
            "Admit users outside both groups as users."},
           {"auth.ldap.adminsGroup", T::kString, "Puddle-Administrators", "Admins' group."},
           {"auth.ldap.usersGroup", T::kString, "Puddle-Users", "Users' group."},
           {"auth.ldap.cloudResourcesTagsMapping", T::kStringMap, "",
            "LDAP attribute to cloud tag."},
       }});
  parts.push_back(
      {.name = "auth.activeDirectory",
       .key_class = KeyClass::kRefused,
       .reason = "Active Directory login is not built yet; set auth.activeDirectory.enabled to "
                 "false, or remove auth.activeDirectory, to sign in with Puddle's own accounts",
       .feature = "Active Directory login",
       .part_switch = PartSwitch::kEnabledTrue,
       .switch_key = "auth.activeDirectory.enabled",
       .keys = {
           {"auth.activeDirectory.enabled", T::kBool, "false", "Sign in with Active Directory."},
           {"auth.activeDirectory.server", T::kString, "", "Domain controller host."},
           {"auth.activeDirectory.port", T::kInt, "389", "Domain controller port."},
           {"auth.activeDirectory.baseDN", T::kString, "", "Search base."},
           {"auth.activeDirectory.security", T::kString, "tls", "none, start_tls or tls."},
           {"auth.activeDirectory.objectGUIDAttr", T::kString, "objectGUID", "User id attribute."},
           {"auth.activeDirectory.displayNameAttr", T::kString, "displayName",
            "Display name attribute."},
           {"auth.activeDirectory.administratorsGroup", T::kString, "Puddle-Administrators",
            "Admins' group."},
           {"auth.activeDirectory.usersGroup", T::kString, "Puddle-Users", "Users' group."},
           {"auth.activeDirectory.implicitGrant", T::kBool, "false",
            "Admit users outside both groups as users."},
       }});
  parts.push_back(
      {.name = "auth.oidc",
       .key_class = KeyClass::kRefused,
       .reason = "OpenID Connect login is not built yet; set auth.oidc.enabled to false, or "
                 "remove auth.oidc, to sign in with Puddle's own accounts",
       .feature = "OpenID Connect login",
       .part_switch = PartSwitch::kEnabledTrue,
       .switch_key = "auth.oidc.enabled",
       .keys = {
           {"auth.oidc.enabled", T::kBool, "false", "Sign in with OpenID Connect."},
           {"auth.oidc.issuer", T::kString, "", "Issuer URL."},
           {"auth.oidc.clientId", T::kString, "", "Client id."},
           {"auth.oidc.clientSecret", T::kString, "", "Client secret.", {}, kSecret},
           {"auth.oidc.redirectUrl", T::kString, "/oidc/authorization-code/callback",
            "Callback URL."},
           {"auth.oidc.logoutUrl", T::kString, "", "End-session URL."},
           {"auth.oidc.scopes", T::kStringList, "[openid, profile, email, offline_access]",
            "Scopes requested."},
           {"auth.oidc.implicitGrant", T::kBool, "false",
            "Admit users with neither role as users."},
           {"auth.oidc.adminRole", T::kString, "Puddle-Administrators", "Admins' role."},
           {"auth.oidc.userRole", T::kString, "Puddle-Users", "Users' role."},
           {"auth.oidc.tokenRefreshInterval", T::kString, "15m", "Token refresh interval."},
       }});
  parts.push_back(
      {.name = "auth.oidc.clientBearerTokenAuth",
       .key_class = KeyClass::kRefused,
       .reason = "OpenID Connect bearer tokens for API clients are not built yet; set "
                 "auth.oidc.clientBearerTokenAuth.enabled to false, and use API keys "
                 "(auth.apiKeys.enabled) meanwhile",
       .feature = "OpenID Connect bearer tokens",
       .part_switch = PartSwitch::kEnabledTrue,
       .switch_key = "auth.oidc.clientBearerTokenAuth.enabled",
       .keys = {
           {"auth.oidc.clientBearerTokenAuth.enabled", T::kBool, "false",
            "Accept OIDC bearer tokens from API clients."},
           {"auth.oidc.clientBearerTokenAuth.issuer", T::kString, "", "Issuer URL."},
           {"auth.oidc.clientBearerTokenAuth.clientId", T::kString, "", "PKCE client id."},
           {"auth.oidc.clientBearerTokenAuth.scopes", T::kStringList, "[openid, offline_access]",
            "Scopes requested."},
       }});
  parts.push_back({.name = "auth.azureAD",
                   .key_class = KeyClass::kRefused,
                   .reason =
                       "Azure AD login is not built yet; set auth.azureAD.enabled to false, or "
                       "remove auth.azureAD, to sign in with Puddle's own accounts",
                   .feature = "Azure AD login",
                   .part_switch = PartSwitch::kEnabledTrue,
                   .switch_key = "auth.azureAD.enabled",
                   .keys = {
                       {"auth.azureAD.enabled", T::kBool, "false", "Sign in with Azure AD."},
                       {"auth.azureAD.useAADLoginExtension", T::kBool, "false",
                        "SSH into systems with Azure AD accounts."},
                   }});
  parts.push_back(
      {.name = "providers.aws",
       .key_class = KeyClass::kRefused,
       .reason = "the AWS provider is not built yet; set providers.aws.enabled to false, or "
                 "remove providers.aws, to run systems on this host with the local provider",
       .feature = "the AWS provider",
       .part_switch = PartSwitch::kEnabledTrue,
       .switch_key = "providers.aws.enabled",
       .keys = {
           {"providers.aws.enabled", T::kBool, "false", "Run systems on AWS EC2."},
           {"providers.aws.owner", T::kString, "", "AWS account id."},
           {"providers.aws.vpcId", T::kString, "", "VPC of systems.", {"providers.aws.pcId"}},
           {"providers.aws.sgIds",
            T::kStringList,
            "",
            "Security groups of systems.",
            {"providers.aws.sgId"}},
           {"providers.aws.subnetId", T::kString, "", "Subnet of systems."},
           {"providers.aws.iamInstanceProfile", T::kString, "", "Instance profile of systems."},
           {"providers.aws.publicIpEnabled", T::kBool, "", "Give systems a public IP address."},
           {"providers.aws.packerInstanceType", T::kString, "p3.2xlarge",
            "Instance type of image builders."},
           {"providers.aws.encryptEBSVolume", T::kBool, "false", "Encrypt EBS volumes."},
           {"providers.aws.ebsKMSKeyArn", T::kString, "",
            "Shared KMS key; empty makes one key per system."},
           {"providers.aws.metadataEndpointIAMRole", T::kString,
            "http://169.254.169.254/latest/meta-data/iam/info",
            "Metadata URL of the IAM role check."},
           {"providers.aws.suppressIAMRoleCheck", T::kBool, "false", "Skip the IAM role check."},
           {"providers.aws.sshUsername", T::kString, "ubuntu", "SSH user on systems."},
           {"providers.aws.sourceAMIOwner", T::kString, "099720109477", "Owner of source AMIs."},
           {"providers.aws.sourceAMINameFilter", T::kString,
            "ubuntu/images/*ubuntu-xenial-16.04-amd64-server-*", "Name filter of source AMIs."},
           {"providers.aws.packerRunTags", T::kStringMap, "", "Tags of image builders."},
           {"providers.aws.amiTags", T::kStringMap, "", "Tags of built AMIs."},
           {"providers.aws.userDataScriptPath", T::kString, "", "User data of systems."},
           {"providers.aws.preflightScriptPath", T::kString, "",
            "Script run on systems after cloud-init."},
           {"providers.aws.packerVmNames", T::kStringList, "", "Names of image builders."},
           {"providers.aws.packerUserDataScriptPath", T::kString, "",
            "User data of image builders."},
           {"providers.aws.packerPreflightScriptPath", T::kString, "",
            "Script run on builders before the product installs."},
           {"providers.aws.packerPostflightScriptPath", T::kString, "",
            "Script run on builders after the product installs."},
           {"providers.aws.packerRebootAfterPreflight", T::kBool, "false",
            "Reboot builders after the preflight script."},
           {"providers.aws.packerRebootAfterPostflight", T::kBool, "false",
            "Reboot builders after the postflight script."},
           {"providers.aws.storageEBSDeviceName", T::kString, "/dev/sdf",
            "Device name of the data volume."},
           {"providers.aws.storageDiskFileSystem", T::kString, "ext4",
            "File system of the data volume."},
           {"providers.aws.storageDiskDevice", T::kString, "/dev/nvme1n1",
            "Data volume device on systems."},
           {"providers.aws.storageDiskDeviceGpu", T::kString, "/dev/xvdf",
            "Data volume device on GPU systems."},
           {"providers.aws.vmNamePrefix", T::kString, "puddle-", "Prefix of instance names."},
           {"providers.aws.vmNameRegexp", T::kString, "'^[-0-9a-z]*[0-9a-z]$'",
            "Pattern of system names; Puddle uses the top-level vmNameRegexp."},
           {"providers.aws.vmNameRegexpDescription", T::kString, "",
            "Explanation of vmNameRegexp shown to users."},
           {"providers.aws.disableFSR.checkInterval", T::kString, "15m",
            "Interval of the fast snapshot restore sweeper."},
           {"providers.aws.disableFSR.snapshotsBatchSize", T::kInt, "20",
            "Snapshots per sweeper batch."},
           {"providers.aws.disableFSR.snapshotsBatchInterval", T::kString, "5s",
            "Pause between sweeper batches."},
           {"providers.aws.vmOwnerTagKey", T::kString, "", "Tag key holding the owner's e-mail."},
           {"providers.aws.vmTags", T::kStringMap, "", "Extra tags of instances."},
       }});
  parts.push_back(
      {.name = "mailing",
       .key_class = KeyClass::kRefused,
       .reason = "mail notifications are not built yet; set mailing.enabled to false, or "
                 "remove mailing",
       .feature = "mail notifications",
       .part_switch = PartSwitch::kEnabledTrue,
       .switch_key = "mailing.enabled",
       .keys = {
           {"mailing.enabled", T::kBool, "false", "Send notifications by mail."},
           {"mailing.server", T::kString, "", "SMTP server host:port."},
           {"mailing.username", T::kString, "", "SMTP user."},
           {"mailing.password", T::kString, "", "SMTP password.", {}, kSecret},
           {"mailing.fromAddress", T::kString, "puddle@h2o.ai", "Sender address."},
           {"mailing.fromName", T::kString, "Puddle", "Sender name."},
           {"mailing.recipients", T::kStringList, "", "Extra recipients."},
           {"mailing.offsetHours", T::kInt, "24", "Hours before an event to send a reminder."},
       }});
  return parts;
}

std::vector<PartDefinition> IgnoredParts() {
  std::vector<PartDefinition> parts;
  parts.push_back(
      {.name = "license.file",
       .key_class = KeyClass::kIgnored,
       .reason = "Puddle needs no license file",
       .keys = {{"license.file", T::kString, "/opt/h2oai/puddle/license.sig", "License file."}}});
  parts.push_back({.name = "connection.port",
                   .key_class = KeyClass::kIgnored,
                   .reason = "Puddle listens on the host:port in listen",
                   .keys = {{"connection.port", T::kInt, "", "Port of the original backend."}}});
  parts.push_back({.name = "backend.openFilesWarningThreshold",
                   .key_class = KeyClass::kIgnored,
                   .reason = "Puddle does not warn about its number of open files",
                   .keys = {{"backend.openFilesWarningThreshold", T::kInt, "300",
                             "Open files that triggered a warning."}}});
  parts.push_back(
      {.name = "log files",
       .key_class = KeyClass::kIgnored,
       .reason = "Puddle logs to standard error (the journal under systemd), which stores and "
                 "rotates the log; only logs.level applies",
       .keys = {
           {"logs.dir", T::kString, "/opt/h2oai/puddle/logs", "Log directory."},
           {"logs.maxSize", T::kInt, "1000", "Size in MB at which a log file rotates."},
           {"logs.maxBackups", T::kInt, "15", "Rotated files kept."},
           {"logs.maxAge", T::kInt, "60", "Days rotated files are kept."},
           {"logs.compress", T::kBool, "true", "Compress rotated files."},
           {"logs.colored", T::kBool, "true", "Colour log lines."},
       }});
  parts.push_back(
      {.name = "proxy environment",
       .key_class = KeyClass::kIgnored,
       .reason = "nothing Puddle has built yet sends requests beyond this host, so it has no "
                 "use for a proxy; the AWS provider and mail, which will, are not built yet",
       .keys = {
           {"http_proxy", T::kString, "", "Proxy URL for HTTP requests.", {}, kSecret},
           {"https_proxy", T::kString, "", "Proxy URL for HTTPS requests.", {}, kSecret},
           {"no_proxy", T::kString, "", "Comma-separated hosts reached without the proxy."},
       }});
  parts.push_back(
      {.name = "ssh",
       .key_class = KeyClass::kIgnored,
       .reason = "Puddle does not reach systems over SSH, so it needs no key pair",
       .open = true,
       .keys = {
           {"ssh.publicKey", T::kString, "/opt/h2oai/puddle/ssh/id_rsa.pub", "SSH public key."},
           {"ssh.privateKey", T::kString, "/opt/h2oai/puddle/ssh/id_rsa", "SSH private key."},
       }});
  parts.push_back(
      {.name = "packer",
       .key_class = KeyClass::kIgnored,
       .reason = "Puddle does not build images with Packer",
       .open = true,
       .keys = {
           {"packer.path", T::kString, "/opt/h2oai/puddle/deps/packer", "Packer binary."},
           {"packer.usePublicIP", T::kBool, "true", "Builders get a public IP address."},
           {"packer.buildTimeoutHours", T::kInt, "1", "Build time-out in hours."},
           {"packer.imageNameFormat", T::kString, "'%s'", "Image name format."},
           {"packer.nvidiaDriversURL", T::kString, "", "NVIDIA driver download URL."},
           {"packer.terraformURL", T::kString, "", "Terraform download URL."},
           {"packer.driverlessAIURLPrefix", T::kString, "", "Driverless AI installer mirror."},
           {"packer.h2o3URLPrefix", T::kString, "", "H2O-3 installer mirror."},
       }});
  parts.push_back(
      {.name = "terraform",
       .key_class = KeyClass::kIgnored,
       .reason = "Puddle does not run Terraform; its providers call the compute API directly",
       .open = true,
       .keys = {
           {"terraform.path", T::kString, "/opt/h2oai/puddle/deps/terraform", "Terraform binary."},
           {"terraform.usePublicIP", T::kBool, "true", "Reach systems by public IP address."},
           {"terraform.pluginDir", T::kString, "", "Offline plugin directory."},
       }});
  parts.push_back(
      {.name = "reverseProxy",
       .key_class = KeyClass::kIgnored,
       .reason = "Puddle has its own access proxy, set up with proxy.systemsDomain and the tls "
                 "keys, so the original's reverse proxy settings do not apply",
       .open = true,
       .keys = {
           {"reverseProxy.enabled", T::kBool, "false", "Use the reverse proxy."},
           {"reverseProxy.port", T::kInt, "1234", "Reverse proxy port."},
           {"reverseProxy.caCertificate", T::kString, "",
            "CA certificate for system certificates."},
           {"reverseProxy.caPrivateKey", T::kString, "", "CA private key."},
           {"reverseProxy.clientCertificate", T::kString, "", "Forward-auth client certificate."},
           {"reverseProxy.clientPrivateKey", T::kString, "", "Forward-auth client key."},
       }});
  parts.push_back(
      {.name = "webclient",
       .key_class = KeyClass::kIgnored,
       .reason = "Puddle's web UI has none of the original web client's settings; directUrl "
                 "follows connections.usePublicIP",
       .open = true,
       .keys = {
           {"webclient.usePublicIp", T::kBool, "true", "Show public IP addresses."},
           {"webclient.outOfCUsUserMsg", T::kString, "", "Message shown when credits run out."},
           {"webclient.userSshAccessEnabled", T::kBool, "true", "Users may download SSH keys."},
       }});
  parts.push_back(
      {.name = "products.dai",
       .key_class = KeyClass::kIgnored,
       .reason = "Puddle has no Driverless AI settings; products are managed through the API",
       .open = true,
       .keys = {
           {"products.dai.configTomlTemplatePath", T::kString,
            "/opt/h2oai/puddle/configs/dai/config.toml", "Default config.toml of new systems."},
           {"products.dai.license", T::kString, "",
            "Driverless AI license file, installed on new systems."},
           {"products.dai.authType", T::kString, "local", "local or openid."},
           {"products.dai.openid.baseURL", T::kString, "", "OpenID provider base URL."},
           {"products.dai.openid.configurationURL", T::kString, "", "OpenID discovery URL."},
           {"products.dai.openid.introspectionURL", T::kString, "", "Token introspection URL."},
           {"products.dai.openid.authURLSuffix", T::kString, "/auth",
            "Authorization endpoint suffix."},
           {"products.dai.openid.tokenURLSuffix", T::kString, "/token", "Token endpoint suffix."},
           {"products.dai.openid.userinfoURLSuffix", T::kString, "/userinfo",
            "Userinfo endpoint suffix."},
           {"products.dai.openid.endSessionURLSuffix", T::kString, "/logout",
            "End-session endpoint suffix."},
           {"products.dai.openid.clientId", T::kString, "", "OpenID client id."},
           {"products.dai.openid.clientSecret",
            T::kString,
            "",
            "OpenID client secret.",
            {},
            kSecret},
           {"products.dai.openid.scope", T::kString, "", "Scopes requested."},
           {"products.dai.openid.usernameFieldName", T::kString, "name",
            "Claim holding the user name."},
           {"products.dai.openid.userinfoAuthKey", T::kString, "sub",
            "Userinfo field that identifies the user."},
           {"products.dai.openid.clientTokens.clientId", T::kString, "",
            "PKCE client id of the Python client."},
           {"products.dai.openid.clientTokens.issuer", T::kString, "",
            "Issuer of the Python client's tokens."},
           {"products.dai.openid.clientTokens.scope", T::kString, "",
            "Scopes of the Python client."},
           {"products.dai.googleAnalytics.usageStatsOptIn", T::kBool, "true",
            "Send usage statistics."},
           {"products.dai.googleAnalytics.exceptionTrackerOptIn", T::kBool, "false",
            "Send exception reports."},
           {"products.dai.googleAnalytics.autodlMessagesTrackerOptIn", T::kBool, "true",
            "Send AutoDL messages."},
       }});
  parts.push_back(
      {.name = "products.h2o3",
       .key_class = KeyClass::kIgnored,
       .reason = "Puddle has no H2O-3 settings; products are managed through the API",
       .open = true,
       .keys = {{"products.h2o3.authEnabled", T::kBool, "false", "H2O-3 basic auth."}}});
  parts.push_back(
      {.name = "providers.azure",
       .key_class = KeyClass::kIgnored,
       .reason = "Puddle has no Azure provider, so no system runs on Azure",
       .open = true,
       .keys = {
           {"providers.azure.enabled", T::kBool, "false", "Run systems on Azure."},
           {"providers.azure.authority", T::kString, "",
            "https://login.microsoftonline.com/<AAD>.onmicrosoft.com."},
           {"providers.azure.location", T::kString, "", "Region."},
           {"providers.azure.rg", T::kString, "", "Resource group."},
           {"providers.azure.vnetrg", T::kString, "", "Resource group of the virtual network."},
           {"providers.azure.vnet", T::kString, "", "Virtual network id."},
           {"providers.azure.sg", T::kString, "", "Network security group id."},
           {"providers.azure.subnet", T::kString, "", "Subnet id."},
           {"providers.azure.enterpriseApplicationObjectId", T::kString, "",
            "Object id used by Azure AD login."},
           {"providers.azure.adminRoleId", T::kString, "", "Admin role id used by Azure AD login."},
           {"providers.azure.publicIpEnabled", T::kBool, "true",
            "Give systems a public IP address."},
           {"providers.azure.packerInstanceType", T::kString, "Standard_NC6",
            "VM size of image builders."},
           {"providers.azure.sshUsername", T::kString, "puddle", "SSH user on systems."},
           {"providers.azure.sourceSharedImageGallery.subscriptionId", T::kString, "",
            "Subscription of the source gallery."},
           {"providers.azure.sourceSharedImageGallery.rg", T::kString, "",
            "Resource group of the source gallery."},
           {"providers.azure.sourceSharedImageGallery.name", T::kString, "", "Source gallery."},
           {"providers.azure.sourceSharedImageGallery.imageName", T::kString, "",
            "Source image in the gallery."},
           {"providers.azure.sourceSharedImageGallery.imageVersion", T::kString, "",
            "Source image version."},
           {"providers.azure.sourceImageRG", T::kString, "",
            "Resource group of a private source image."},
           {"providers.azure.sourceImageName", T::kString, "", "Private source image."},
           {"providers.azure.sourceImagePublisher", T::kString, "Canonical",
            "Marketplace image publisher."},
           {"providers.azure.sourceImageOffer", T::kString, "UbuntuServer",
            "Marketplace image offer."},
           {"providers.azure.sourceImageSku", T::kString, "16.04-LTS", "Marketplace image SKU."},
           {"providers.azure.imageTags", T::kStringMap, "",
            "Tags of images and builder resources."},
           {"providers.azure.customDataScriptPath", T::kString, "",
            "cloud-init custom data of systems."},
           {"providers.azure.preflightScriptPath", T::kString, "",
            "Script run on systems after cloud-init."},
           {"providers.azure.packerVmNames", T::kStringList, "",
            "Names of image builders; their number sets build parallelism."},
           {"providers.azure.packerCustomDataScriptPath", T::kString, "",
            "Custom data of image builders."},
           {"providers.azure.packerPreflightScriptPath", T::kString, "",
            "Script run on builders before the product installs."},
           {"providers.azure.packerPostflightScriptPath", T::kString, "",
            "Script run on builders after the product installs."},
           {"providers.azure.packerRebootAfterPreflight", T::kBool, "false",
            "Reboot builders after the preflight script."},
           {"providers.azure.packerRebootAfterPostflight", T::kBool, "false",
            "Reboot builders after the postflight script."},
           {"providers.azure.storageDiskLun", T::kInt, "0", "LUN of the data disk."},
           {"providers.azure.storageDiskFileSystem", T::kString, "ext4",
            "File system of the data disk."},
           {"providers.azure.storageDiskDevice", T::kString, "/dev/sdc",
            "Data disk device on systems."},
           {"providers.azure.vmNamePrefix", T::kString, "puddle-", "Prefix of VM names."},
           {"providers.azure.vmNameRegexp", T::kString, "'^[-0-9a-z]*[0-9a-z]$'",
            "Pattern of system names; Puddle uses the top-level vmNameRegexp."},
           {"providers.azure.vmNameRegexpDescription", T::kString, "",
            "Explanation of vmNameRegexp shown to users."},
           {"providers.azure.vmOwnerTagKey", T::kString, "", "Tag key holding the owner's e-mail."},
           {"providers.azure.vmTags", T::kStringMap, "", "Extra tags of VMs."},
       }});
  parts.push_back(
      {.name = "providers.gcp",
       .key_class = KeyClass::kIgnored,
       .reason = "Puddle has no Google Cloud provider, so no system runs on Google "
                 "Cloud",
       .open = true,
       .keys = {
           {"providers.gcp.enabled", T::kBool, "false", "Run systems on Google Cloud."},
           {"providers.gcp.project", T::kString, "", "Project."},
           {"providers.gcp.zone", T::kString, "", "Zone."},
           {"providers.gcp.network", T::kString, "default", "VPC network."},
           {"providers.gcp.subnetwork", T::kString, "", "Subnetwork."},
           {"providers.gcp.publicIpEnabled", T::kBool, "", "Give systems a public IP address."},
           {"providers.gcp.encryptVolume", T::kBool, "false", "Encrypt disks with Cloud KMS."},
           {"providers.gcp.volumeKmsKeyId", T::kString, "", "Shared KMS key."},
           {"providers.gcp.volumeKmsKeyRingName", T::kString, "",
            "Key ring for one key per system."},
           {"providers.gcp.volumeKmsKeyRingLocation", T::kString, "", "Location of that key ring."},
           {"providers.gcp.serviceAccountEmail", T::kString, "", "Service account of systems."},
           {"providers.gcp.sshUsername", T::kString, "puddle", "SSH user on systems."},
           {"providers.gcp.storageDiskFileSystem", T::kString, "ext4",
            "File system of the data disk."},
           {"providers.gcp.startupScriptPath", T::kString, "", "Startup script of systems."},
           {"providers.gcp.preflightScriptPath", T::kString, "",
            "Script run on systems after the startup script."},
           {"providers.gcp.imageLabels", T::kStringMap, "", "Labels of images."},
           {"providers.gcp.packerVmNames", T::kStringList, "", "Names of image builders."},
           {"providers.gcp.packerServiceAccountEmail", T::kString, "",
            "Service account of image builders."},
           {"providers.gcp.packerSourceImageProject", T::kString, "ubuntu-os-cloud",
            "Project of the source image."},
           {"providers.gcp.packerSourceImageFamily", T::kString, "ubuntu-1604-lts",
            "Family of the source image."},
           {"providers.gcp.packerInstanceType", T::kString, "n1-highmem-8",
            "Machine type of image builders."},
           {"providers.gcp.packerAcceleratorType", T::kString, "nvidia-tesla-v100",
            "Accelerator of image builders."},
           {"providers.gcp.packerAcceleratorCount", T::kInt, "1",
            "Accelerators per image builder."},
           {"providers.gcp.packerStartupScriptPath", T::kString, "",
            "Startup script of image builders."},
           {"providers.gcp.packerPreflightScriptPath", T::kString, "",
            "Script run on builders before the product installs."},
           {"providers.gcp.packerPostflightScriptPath", T::kString, "",
            "Script run on builders after the product installs."},
           {"providers.gcp.packerRebootAfterPreflight", T::kBool, "false",
            "Reboot builders after the preflight script."},
           {"providers.gcp.packerRebootAfterPostflight", T::kBool, "false",
            "Reboot builders after the postflight script."},
           {"providers.gcp.packerRunLabels", T::kStringMap, "", "Labels of image builders."},
           {"providers.gcp.packerRunNetworkTags", T::kStringList, "",
            "Network tags of image builders."},
           {"providers.gcp.vmNamePrefix", T::kString, "puddle-", "Prefix of VM names."},
           {"providers.gcp.vmNameRegexp", T::kString, "'^[-0-9a-z]*[0-9a-z]$'",
            "Pattern of system names; Puddle uses the top-level vmNameRegexp."},
           {"providers.gcp.vmNameRegexpDescription", T::kString, "",
            "Explanation of vmNameRegexp shown to users."},
           {"providers.gcp.runNetworkTags", T::kStringList, "", "Network tags of all systems."},
           {"providers.gcp.backendServiceAccountEmail", T::kString, "",
            "Service account of the backend VM; needed with useOsLogin."},
           {"providers.gcp.useOsLogin", T::kBool, "false", "SSH through OS Login."},
           {"providers.gcp.vmOwnerTagKey", T::kString, "", "Label key holding the owner's e-mail."},
           {"providers.gcp.vmTags", T::kStringMap, "", "Extra labels of VMs."},
       }});
  return parts;
}

void ReplaceAll(std::string& text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// Adds to `spellings` what one rule derives from each spelling in it; returns
// true when it added any.
bool ApplySpellingRulesOnce(std::vector<std::string>& spellings) {
  std::vector<std::string> derived;
  for (const std::string& spelling : spellings) {
    if (spelling.ends_with(".enabled")) {
      derived.push_back(spelling.substr(0, spelling.size() - 1));
    }
    if (spelling.find("usePublicIP") != std::string::npos) {
      std::string other = spelling;
      ReplaceAll(other, "usePublicIP", "usePublicIp");
      derived.push_back(other);
    }
    if (spelling.find("usePublicIp") != std::string::npos) {
      std::string other = spelling;
      ReplaceAll(other, "usePublicIp", "usePublicIP");
      derived.push_back(other);
    }
    if (spelling.starts_with("redis.connections.")) {
      derived.push_back("redis.connection." + spelling.substr(sizeof("redis.connections.") - 1));
    }
  }
  bool added = false;
  for (std::string& spelling : derived) {
    if (std::find(spellings.begin(), spellings.end(), spelling) == spellings.end()) {
      spellings.push_back(std::move(spelling));
      added = true;
    }
  }
  return added;
}

std::vector<PartDefinition> BuildParts() {
  std::vector<PartDefinition> parts;
  parts.push_back(UsedPart());
  parts.push_back(DatabasePart());
  parts.push_back(RedisPart());
  for (auto& part : RefusedParts()) parts.push_back(std::move(part));
  for (auto& part : IgnoredParts()) parts.push_back(std::move(part));

  for (PartDefinition& part : parts) {
    std::string prefix = std::string(part.name) + ".";
    part.is_section = !part.name.empty() && std::all_of(part.keys.begin(), part.keys.end(),
                                                        [&](const KeyDefinition& key) {
                                                          return key.key.starts_with(prefix);
                                                        });
    for (KeyDefinition& key : part.keys) {
      key.key_class = part.key_class;
      std::vector<std::string> spellings = ExpandedSpellings(key.key, key.alternatives);
      key.spellings.assign(spellings.begin() + 1, spellings.end());
    }
  }
  // Pointers into `parts` are set last, once the vector no longer moves.
  for (PartDefinition& part : parts) {
    for (KeyDefinition& key : part.keys) key.part = &part;
  }
  return parts;
}

struct Index {
  std::map<std::string, const KeyDefinition*, std::less<>> by_spelling;
  std::map<std::string, const KeyDefinition*, std::less<>> by_key;
  std::set<std::string, std::less<>> sections;
  std::vector<std::string> known_paths;
};

const Index& GetIndex() {
  static const Index index = [] {
    Index built;
    for (const PartDefinition& part : ConfigParts()) {
      for (const KeyDefinition& key : part.keys) {
        built.by_key.emplace(std::string(key.key), &key);
        std::vector<std::string> spellings = {std::string(key.key)};
        spellings.insert(spellings.end(), key.spellings.begin(), key.spellings.end());
        for (const std::string& spelling : spellings) {
          built.by_spelling.emplace(spelling, &key);
          for (size_t dot = spelling.find('.'); dot != std::string::npos;
               dot = spelling.find('.', dot + 1)) {
            built.sections.insert(spelling.substr(0, dot));
          }
        }
      }
    }
    for (const auto& [spelling, key] : built.by_spelling) built.known_paths.push_back(spelling);
    built.known_paths.insert(built.known_paths.end(), built.sections.begin(), built.sections.end());
    return built;
  }();
  return index;
}

}  // namespace

std::vector<std::string> ExpandedSpellings(std::string_view key,
                                           const std::vector<std::string_view>& alternatives) {
  std::vector<std::string> spellings = {std::string(key)};
  for (std::string_view alternative : alternatives) spellings.emplace_back(alternative);
  // Rules apply to each other's results too ("redis.connection.enable").
  while (ApplySpellingRulesOnce(spellings)) {
  }
  return spellings;
}

const std::vector<PartDefinition>& ConfigParts() {
  static const std::vector<PartDefinition> parts = BuildParts();
  return parts;
}

const KeyDefinition* FindKeyBySpelling(std::string_view spelling) {
  const auto& index = GetIndex().by_spelling;
  auto found = index.find(spelling);
  return found == index.end() ? nullptr : found->second;
}

const KeyDefinition* FindKey(std::string_view key) {
  const auto& index = GetIndex().by_key;
  auto found = index.find(key);
  return found == index.end() ? nullptr : found->second;
}

bool IsSection(std::string_view path) { return GetIndex().sections.contains(path); }

const PartDefinition* FindOpenPart(std::string_view path) {
  const PartDefinition* best = nullptr;
  for (const PartDefinition& part : ConfigParts()) {
    if (!part.open) continue;
    bool inside = path.size() > part.name.size() && path.starts_with(part.name) &&
                  path[part.name.size()] == '.';
    if (inside && (best == nullptr || part.name.size() > best->name.size())) best = &part;
  }
  return best;
}

const std::vector<std::string>& KnownPaths() { return GetIndex().known_paths; }

const std::vector<std::pair<std::string, std::string>>& SectionAliases() {
  static const std::vector<std::pair<std::string, std::string>> aliases = {
      {"redis.connections", "redis.connection"},
  };
  return aliases;
}

std::string_view KeyClassName(KeyClass key_class) {
  switch (key_class) {
    case KeyClass::kUsed: return "used";
    case KeyClass::kIgnored: return "ignored";
    case KeyClass::kRefused: return "refused";
  }
  return "used";
}

std::string_view ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kString: return "string";
    case ValueType::kBool: return "bool";
    case ValueType::kInt: return "int";
    case ValueType::kStringList: return "string list";
    case ValueType::kStringMap: return "map label -> string";
    case ValueType::kLabelMinutesMap: return "map label -> int";
    case ValueType::kRange: return "int range";
  }
  return "string";
}

}  // namespace puddle::config
