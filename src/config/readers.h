// Readers for the keys Puddle uses: each checks one value and stores it in Config.
//
// Internal to the config library; schema.cc names one reader per used key.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/schema.h"

namespace puddle::config {

std::optional<ValueProblem> ReadDataDir(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadListen(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadTlsCertFile(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadTlsKeyFile(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadTokenSecret(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadApiKeysEnabled(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadBaseUrl(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadUsePublicIp(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadSystemsDomain(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadTrustedProxies(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadIdleTimeoutOptions(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadMaxKeepAliveMinutes(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadCurrency(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadVmNameRegexp(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadWorkers(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadLogLevel(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadDatabaseDriver(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadDatabaseHost(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadDatabasePort(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadDatabaseUser(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadDatabaseName(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadDatabaseSslMode(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadDatabasePassword(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadRedisProtocol(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadRedisAddress(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadRedisPassword(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadRedisTls(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadLocalEnabled(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadLocalUidRange(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadLocalStopGraceSeconds(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadLocalListenAddress(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadLocalPortRange(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadLocalRequireFirewall(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadLocalNetworkIsolation(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadLocalNetworkCidr(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadLocalNetworkAllow(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadLocalPrivateTmp(const ConfigValue& value, Config& config);
std::optional<ValueProblem> ReadFakeEnabled(const ConfigValue& value, Config& config);

// Returns the lower-case host of a URL that ReadBaseUrl accepted.
std::string BaseUrlHost(std::string_view base_url);

// Returns the host part of a `listen` value that ReadListen accepted,
// without IPv6 brackets.
std::string ListenHost(std::string_view listen);

// True for localhost, names under .localhost, and loopback IP addresses.
bool IsLoopbackHost(std::string_view host);

}  // namespace puddle::config
