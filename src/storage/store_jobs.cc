// Named queries for jobs: insert, atomic claim, heartbeat and reaping.
#include "storage/store.h"
#include "storage/store_internal.h"

namespace puddle {

using namespace store_internal;

namespace {

constexpr const char* kJobColumns =
    "id, kind, system_id, operation_id, state, attempt, max_attempts, run_after, claimed_by, "
    "heartbeat_at, last_error, created_at, updated_at";

Job ReadJob(const sql::Row& row) {
  Job job;
  job.id = row.Text(0);
  job.kind = row.Text(1);
  job.system_id = row.Text(2);
  job.operation_id = row.Text(3);
  job.state = ParseJobState(row.Text(4)).value_or(JobState::kFailed);
  job.attempt = static_cast<int>(row.Int(5));
  job.max_attempts = static_cast<int>(row.Int(6));
  job.run_after = Time(row, 7);
  job.claimed_by = row.Text(8);
  job.heartbeat_at = OptionalTime(row, 9);
  job.last_error = row.Text(10);
  job.created_at = Time(row, 11);
  job.updated_at = Time(row, 12);
  return job;
}

// Advisory lock class for claims on PostgreSQL. The second key of each lock
// is the hash of the system id.
constexpr int32_t kClaimLockClass = 0x70756a63;  // "pujc" in ASCII
// Candidates ClaimJobSkipLocked examines before giving up until the next poll.
constexpr int kMaxClaimCandidates = 16;

// Claims a job on PostgreSQL, where claimers run concurrently. FOR UPDATE SKIP
// LOCKED lets each claimer take a different job without waiting. A per-system
// advisory lock, followed by a re-check in a new statement (and so a new
// snapshot), keeps two claimers from starting two jobs of one system: the
// candidate query's snapshot may predate another claimer's commit.
Result<std::optional<Job>> ClaimJobSkipLocked(sql::Connection& db, const std::string& worker_id,
                                              int64_t now) {
  std::vector<std::string> skipped_systems;
  for (int candidate = 0; candidate < kMaxClaimCandidates; ++candidate) {
    std::string sql =
        "SELECT j.id, j.system_id FROM jobs j WHERE j.state = 'queued' AND j.run_after <= $1 "
        "AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.system_id = j.system_id "
        "AND r.state = 'running')";
    sql::Params params = {now};
    for (const auto& system_id : skipped_systems) {
      params.push_back(system_id);
      sql += " AND j.system_id <> $" + std::to_string(params.size());
    }
    sql += " ORDER BY j.run_after, j.created_at, j.id LIMIT 1 FOR UPDATE OF j SKIP LOCKED";
    PUDDLE_ASSIGN_OR_RETURN(auto candidates, db.Query(sql, params));
    if (candidates.empty()) return std::optional<Job>();
    std::string job_id = candidates[0].Text(0);
    std::string system_id = candidates[0].Text(1);

    PUDDLE_ASSIGN_OR_RETURN(
        auto locked, db.Query("SELECT pg_try_advisory_xact_lock($1::integer, hashtext($2))",
                              {int64_t{kClaimLockClass}, system_id}));
    if (locked.empty() || !locked[0].Bool(0)) {
      skipped_systems.push_back(system_id);  // another claimer has locked this system
      continue;
    }
    PUDDLE_ASSIGN_OR_RETURN(
        auto running, db.Query("SELECT 1 FROM jobs WHERE system_id = $1 AND state = 'running' "
                               "LIMIT 1",
                               {system_id}));
    if (!running.empty()) {
      skipped_systems.push_back(system_id);  // claimed since the candidate query began
      continue;
    }

    PUDDLE_ASSIGN_OR_RETURN(
        auto rows,
        db.Query(std::string("UPDATE jobs SET state = 'running', claimed_by = $1, "
                             "attempt = attempt + 1, heartbeat_at = $2, updated_at = $2 "
                             "WHERE id = $3 AND state = 'queued' RETURNING ") +
                     kJobColumns,
                 {worker_id, now, job_id}));
    if (rows.empty()) return std::optional<Job>();
    return std::optional<Job>(ReadJob(rows[0]));
  }
  return std::optional<Job>();
}

}  // namespace

Status Tx::InsertJob(const Job& job) {
  return db_
      .Execute(std::string("INSERT INTO jobs (") + kJobColumns +
                   ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
               {job.id, job.kind, job.system_id, job.operation_id,
                std::string(JobStateName(job.state)), int64_t{job.attempt},
                int64_t{job.max_attempts}, Millis(job.run_after), job.claimed_by,
                OptionalMillis(job.heartbeat_at), job.last_error, Millis(job.created_at),
                Millis(job.updated_at)})
      .map([](int64_t) {});
}

Result<std::optional<Job>> Tx::GetJob(const std::string& id) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = $1", {id}));
  if (rows.empty()) return std::optional<Job>();
  return std::optional<Job>(ReadJob(rows[0]));
}

Result<std::optional<Job>> Tx::ClaimJob(const std::string& worker_id) {
  // One job per system at a time: a system with a running job is skipped, so
  // provider calls for one system never overlap.
  int64_t now = Millis(Now());
  if (Dialect() == "postgres") return ClaimJobSkipLocked(db_, worker_id, now);

  // SQLite runs one writer at a time, so the subquery and the update cannot
  // interleave with another claim.
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query(std::string("UPDATE jobs SET state = 'running', claimed_by = $1, "
                            "attempt = attempt + 1, heartbeat_at = $2, updated_at = $2 "
                            "WHERE id = (SELECT j.id FROM jobs j WHERE j.state = 'queued' "
                            "AND j.run_after <= $2 AND NOT EXISTS (SELECT 1 FROM jobs r "
                            "WHERE r.system_id = j.system_id AND r.state = 'running') "
                            "ORDER BY j.run_after, j.created_at, j.id LIMIT 1) "
                            "AND state = 'queued' RETURNING ") +
                    kJobColumns,
                {worker_id, now}));
  if (rows.empty()) return std::optional<Job>();
  return std::optional<Job>(ReadJob(rows[0]));
}

Status Tx::UpdateJob(const Job& job) {
  return db_
      .Execute(
          "UPDATE jobs SET state = $2, attempt = $3, run_after = $4, claimed_by = $5, "
          "heartbeat_at = $6, last_error = $7, updated_at = $8 WHERE id = $1",
          {job.id, std::string(JobStateName(job.state)), int64_t{job.attempt},
           Millis(job.run_after), job.claimed_by, OptionalMillis(job.heartbeat_at),
           job.last_error, Millis(Now())})
      .map([](int64_t) {});
}

Status Tx::HeartbeatJobs(const std::vector<std::string>& job_ids, const std::string& worker_id) {
  for (const auto& id : job_ids) {
    PUDDLE_RETURN_IF_ERROR(db_.Execute(
        "UPDATE jobs SET heartbeat_at = $3 WHERE id = $1 AND claimed_by = $2 AND state = 'running'",
        {id, worker_id, Millis(Now())}));
  }
  return Ok();
}

Result<int64_t> Tx::RequeueRunningJobs() {
  return db_.Execute(
      "UPDATE jobs SET state = 'queued', claimed_by = '', run_after = $1, updated_at = $1 "
      "WHERE state = 'running'",
      {Millis(Now())});
}

Result<std::vector<Job>> Tx::ListActiveJobs(const std::string& system_id) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kJobColumns +
                               " FROM jobs WHERE system_id = $1 AND state IN ('queued', "
                               "'running') ORDER BY created_at, id",
                           {system_id}));
  std::vector<Job> jobs;
  for (const auto& row : rows) jobs.push_back(ReadJob(row));
  return jobs;
}

Result<std::vector<Job>> Tx::ListSilentJobs(TimePoint before) {
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kJobColumns +
                               " FROM jobs WHERE state = 'running' AND heartbeat_at < $1 "
                               "ORDER BY heartbeat_at",
                           {Millis(before)}));
  std::vector<Job> jobs;
  for (const auto& row : rows) jobs.push_back(ReadJob(row));
  return jobs;
}

Result<std::vector<std::string>> Tx::ListUnclaimedJobIds(TimePoint updated_before, int limit) {
  // The same conditions as ClaimJob's, so each id was claimable when listed.
  PUDDLE_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT j.id FROM jobs j WHERE j.state = 'queued' AND j.run_after <= $1 "
                "AND j.updated_at < $2 AND NOT EXISTS (SELECT 1 FROM jobs r "
                "WHERE r.system_id = j.system_id AND r.state = 'running') "
                "ORDER BY j.run_after, j.created_at, j.id LIMIT $3",
                {Millis(Now()), Millis(updated_before), int64_t{limit}}));
  std::vector<std::string> ids;
  for (const auto& row : rows) ids.push_back(row.Text(0));
  return ids;
}

Result<std::optional<TimePoint>> Tx::NextRunnableJobTime() {
  PUDDLE_ASSIGN_OR_RETURN(auto rows,
                          db_.Query("SELECT MIN(run_after) FROM jobs WHERE state = 'queued'", {}));
  return OptionalTime(rows[0], 0);
}

}  // namespace puddle
