#include "cli/system_wait.h"

#include <algorithm>

namespace puddle::cli {
namespace {

// The API's maximum page size, so that catching up takes few requests.
constexpr int kEventsPageSize = 500;

std::string StringField(const boost::json::object& object, std::string_view key) {
  const boost::json::value* value = object.if_contains(key);
  if (value == nullptr || !value->is_string()) return "";
  return std::string(value->as_string());
}

std::string EventsTarget(const std::string& system_id, const std::optional<std::string>& cursor) {
  std::string target = "/api/v1/systems/" + UrlEncode(system_id) +
                       "/events?limit=" + std::to_string(kEventsPageSize);
  if (cursor && !cursor->empty()) target += "&cursor=" + UrlEncode(*cursor);
  return target;
}

struct EventsPage {
  boost::json::array items;
  std::optional<std::string> next_cursor;
};

Result<EventsPage> FetchEventsPage(ApiClient& client, const std::string& system_id,
                                   const std::optional<std::string>& cursor) {
  auto reply = client.Get(EventsTarget(system_id, cursor));
  if (!reply) return tl::unexpected(reply.error().WithContext("read events of " + system_id));
  EventsPage page;
  if (!reply->json.is_object()) return page;
  const boost::json::object& body = reply->json.as_object();
  if (const auto* items = body.if_contains("items"); items != nullptr && items->is_array()) {
    page.items = items->as_array();
  }
  if (const auto* next = body.if_contains("nextCursor"); next != nullptr && next->is_string()) {
    page.next_cursor = std::string(next->as_string());
  }
  return page;
}

void PrintEvent(const boost::json::value& event, std::ostream& progress) {
  if (!event.is_object()) return;
  const boost::json::object& object = event.as_object();
  std::string level = StringField(object, "level");
  level.resize(std::max<size_t>(level.size(), 7), ' ');
  progress << StringField(object, "time") << "  " << level << "  " << StringField(object, "message")
           << "\n";
}

// Prints every event after `cursor` and moves `cursor` past them.
Status PrintNewEvents(ApiClient& client, const std::string& system_id,
                      std::optional<std::string>& cursor, std::ostream& progress) {
  while (true) {
    auto page = FetchEventsPage(client, system_id, cursor);
    if (!page) return tl::unexpected(page.error());
    for (const auto& event : page->items) PrintEvent(event, progress);
    // A full page means more may follow, unless the cursor did not move.
    const bool moved = page->next_cursor && page->next_cursor != cursor;
    if (page->next_cursor) cursor = page->next_cursor;
    if (page->items.size() < static_cast<size_t>(kEventsPageSize) || !moved) break;
  }
  progress.flush();
  return Ok();
}

bool IsSettled(std::string_view status) {
  return status == "running" || status == "stopped" || status == "failed" || status == "deleted";
}

std::optional<WaitOutcome> Decide(const WaitSpec& spec, const std::string& status) {
  if (status == spec.target_status) return WaitOutcome::kReached;
  if (status == "failed") return WaitOutcome::kFailed;
  // A deleted system never changes status again.
  if (status == "deleted") return WaitOutcome::kElsewhere;
  if (spec.end_at_other_settled_status && IsSettled(status)) return WaitOutcome::kElsewhere;
  return std::nullopt;
}

// An unreachable or busy server may respond again before the wait ends.
bool IsTransient(const Error& error) {
  return error.code == ErrorCode::kUnavailable || error.code == ErrorCode::kRateLimited;
}

}  // namespace

Result<WaitResult> WaitForStatus(ApiClient& client, const WaitSpec& spec, const Clock& clock,
                                 const Sleeper& sleep, std::ostream& progress) {
  const TimePoint deadline =
      clock.Now() + std::chrono::duration_cast<std::chrono::milliseconds>(spec.timeout);
  const std::string system_target = "/api/v1/systems/" + UrlEncode(spec.system_id);
  std::optional<std::string> cursor = spec.events_cursor;
  WaitResult result;

  // Reads the status before the events, so every event up to that status is
  // printed before the wait ends.
  auto poll = [&]() -> Status {
    auto system = client.Get(system_target);
    if (!system) return tl::unexpected(system.error());
    result.system = system->json;
    result.system_body = system->body;
    result.status = system->json.is_object() ? StringField(system->json.as_object(), "status") : "";
    return PrintNewEvents(client, spec.system_id, cursor, progress);
  };

  while (true) {
    std::chrono::milliseconds pause = kWaitPollInterval;
    if (auto polled = poll(); !polled) {
      if (!IsTransient(polled.error())) return tl::unexpected(polled.error());
      progress << "puddle: warning: " << polled.error().message << "; retrying\n";
      pause = std::max(
          pause, std::chrono::milliseconds(1000 * int64_t{polled.error().retry_after_seconds}));
    } else if (auto outcome = Decide(spec, result.status)) {
      result.outcome = *outcome;
      return result;
    }

    const TimePoint now = clock.Now();
    if (now >= deadline) {
      result.outcome = WaitOutcome::kTimedOut;
      return result;
    }
    sleep(std::min<std::chrono::milliseconds>(pause, deadline - now));
  }
}

Result<std::string> LatestEventsCursor(ApiClient& client, const std::string& system_id) {
  std::optional<std::string> cursor;
  while (true) {
    auto page = FetchEventsPage(client, system_id, cursor);
    if (!page) return tl::unexpected(page.error());
    const bool moved = page->next_cursor && page->next_cursor != cursor;
    if (page->next_cursor) cursor = page->next_cursor;
    if (page->items.size() < static_cast<size_t>(kEventsPageSize) || !moved) break;
  }
  return cursor.value_or("");
}

}  // namespace puddle::cli
