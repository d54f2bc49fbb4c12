// The lifecycle table against an expectation written independently from the
// REST contract's table of requests: every action, status and requester.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "services/systems/lifecycle.h"

namespace puddle {
namespace {

using A = OperationAction;
using R = Requester;
using S = SystemStatus;

const std::vector<S> kAllStatuses = {S::kQueued,   S::kProvisioning, S::kStarting, S::kRunning,
                                     S::kStopping, S::kStopped,      S::kRebooting, S::kDeleting,
                                     S::kDeleted,  S::kFailed};
const std::vector<A> kAllActions = {A::kCreate, A::kStart,         A::kStop,
                                    A::kReboot, A::kRestartProduct, A::kDelete,
                                    A::kFail,   A::kKeepAlive};
const std::vector<R> kAllRequesters = {R::kOwner, R::kAdmin, R::kAutomatic};

std::set<S> AllBut(std::set<S> excluded) {
  std::set<S> statuses;
  for (S status : kAllStatuses) {
    if (!excluded.count(status)) statuses.insert(status);
  }
  return statuses;
}

// One row of the contract's table: "allowed from", "path" and "who".
struct ContractRow {
  A action;
  std::set<S> allowed_from;
  std::vector<S> path;
  std::set<R> who;
};

// Written from the contract, not from lifecycle.cc. Create has no "allowed
// from": it makes a new system, so no existing status admits it. R::kAdmin is
// an admin acting on another user's system.
const std::vector<ContractRow>& Contract() {
  static const std::vector<ContractRow> rows = {
      {A::kCreate, {}, {S::kQueued, S::kProvisioning, S::kStarting, S::kRunning}, {R::kOwner}},
      {A::kStart,
       {S::kStopped, S::kFailed},
       {S::kProvisioning, S::kStarting, S::kRunning},
       {R::kOwner, R::kAdmin}},
      {A::kStop,
       {S::kRunning, S::kStarting, S::kRebooting},
       {S::kStopping, S::kStopped},
       {R::kOwner, R::kAdmin, R::kAutomatic}},
      {A::kReboot,
       {S::kRunning},
       {S::kRebooting, S::kStarting, S::kRunning},
       {R::kOwner, R::kAdmin}},
      {A::kRestartProduct, {S::kRunning}, {S::kStarting, S::kRunning}, {R::kAdmin}},
      {A::kDelete,
       AllBut({S::kDeleting, S::kDeleted}),
       {S::kDeleting, S::kDeleted},
       {R::kOwner, R::kAdmin}},
      {A::kFail,
       AllBut({S::kStopped, S::kFailed, S::kDeleted}),
       {S::kFailed},
       {R::kAdmin, R::kAutomatic}},
      {A::kKeepAlive, {S::kRunning}, {}, {R::kOwner, R::kAdmin}},
  };
  return rows;
}

const ContractRow& RowFor(A action) {
  for (const auto& row : Contract()) {
    if (row.action == action) return row;
  }
  ADD_FAILURE() << "no contract row for " << OperationActionName(action);
  return Contract().front();
}

std::string RequesterName(R requester) {
  switch (requester) {
    case R::kOwner: return "owner";
    case R::kAdmin: return "admin";
    case R::kAutomatic: return "automatic";
  }
  return "unknown";
}

std::string Case(A action, S status, R requester) {
  return std::string(OperationActionName(action)) + " from " +
         std::string(SystemStatusName(status)) + " by " + RequesterName(requester);
}

TEST(LifecycleTest, EveryActionHasOneRule) {
  std::set<A> seen;
  for (const auto& rule : LifecycleRules()) {
    EXPECT_TRUE(seen.insert(rule.action).second)
        << "two rules for " << OperationActionName(rule.action);
  }
  EXPECT_EQ(seen.size(), kAllActions.size());
}

// A requester the "who" column does not list is forbidden whatever the
// status; a listed one gets a conflict from a status outside "allowed from".
TEST(LifecycleTest, CheckTransitionMatchesContract) {
  int checked = 0;
  for (A action : kAllActions) {
    const ContractRow& row = RowFor(action);
    for (S status : kAllStatuses) {
      for (R requester : kAllRequesters) {
        SCOPED_TRACE(Case(action, status, requester));
        Status verdict = CheckTransition(action, status, requester);
        ++checked;

        if (!row.who.count(requester)) {
          ASSERT_FALSE(verdict);
          EXPECT_EQ(verdict.error().code, ErrorCode::kForbidden);
          continue;
        }
        if (!row.allowed_from.count(status)) {
          ASSERT_FALSE(verdict);
          EXPECT_EQ(verdict.error().code, ErrorCode::kConflict);
          EXPECT_EQ(verdict.error().status, SystemStatusName(status));
          EXPECT_NE(verdict.error().message.find(std::string(SystemStatusName(status))),
                    std::string::npos)
              << verdict.error().message;
          continue;
        }
        EXPECT_TRUE(verdict) << verdict.error().message;
      }
    }
  }
  EXPECT_EQ(checked, 8 * 10 * 3);
}

TEST(LifecycleTest, FirstStatusIsStartOfContractPath) {
  for (A action : kAllActions) {
    const ContractRow& row = RowFor(action);
    for (S status : kAllStatuses) {
      for (bool has_machine : {true, false}) {
        SCOPED_TRACE(std::string(OperationActionName(action)) + " from " +
                     std::string(SystemStatusName(status)) +
                     (has_machine ? " with a machine" : " without a machine"));
        S first = FirstStatus(action, status, has_machine);
        switch (action) {
          case A::kKeepAlive:
            // No status change.
            EXPECT_EQ(first, status);
            break;
          case A::kStart:
            // "starting (provisioning if nothing exists) → running".
            EXPECT_EQ(first, has_machine ? S::kStarting : S::kProvisioning);
            break;
          default:
            EXPECT_EQ(first, row.path.front());
        }
      }
    }
  }
}

TEST(LifecycleTest, IsOnPathMatchesContractPath) {
  for (A action : kAllActions) {
    const ContractRow& row = RowFor(action);
    std::set<S> path(row.path.begin(), row.path.end());
    for (S status : kAllStatuses) {
      SCOPED_TRACE(std::string(OperationActionName(action)) + " at " +
                   std::string(SystemStatusName(status)));
      EXPECT_EQ(IsOnPath(action, status), path.count(status) == 1);
    }
  }
}

// Sessions close on stopped, failed, deleting and deleted; rebooting and
// starting keep them open.
TEST(LifecycleTest, CostSessionClosesOnContractStatuses) {
  std::set<S> closing = {S::kStopped, S::kFailed, S::kDeleting, S::kDeleted};
  for (S status : kAllStatuses) {
    SCOPED_TRACE(std::string(SystemStatusName(status)));
    EXPECT_EQ(ClosesCostSession(status), closing.count(status) == 1);
  }
}

}  // namespace
}  // namespace puddle
