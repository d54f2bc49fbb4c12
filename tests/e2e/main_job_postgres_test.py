"""The main job on PostgreSQL and Redis, with the jobs run by a separate worker process.

The steps of main_job_test.py run unchanged against a throwaway PostgreSQL,
with job wake-ups going through a throwaway Redis.
`puddle serve --workers 0` serves the API and runs no job; one `puddle worker`
process, sharing the config and the data directory, runs every job. Killing
Puddle in the restart step kills both processes. A last step checks from the
logs that the worker, not the server, ran the jobs.
"""

import os
import re

import e2e_support
import main_job_test

JOB_DONE = re.compile(rb" info job (succeeded|superseded) ")


@e2e_support.require_postgres
@e2e_support.require_redis
class MainJobPostgresTest(main_job_test.MainJobTest):
    # Its own products' ports, so it may run beside main_job_test.py.
    config_text = e2e_support.port_range_config(29300)
    store = "postgres"
    queue = "redis"
    serve_arguments = ("--workers", "0")
    broken_step = None

    @main_job_test.step(blocking=False)
    def test_09_worker_ran_every_job(self):
        with open(self.server.log_path, "rb") as handle:
            served = handle.read()
        with open(self.worker.log_path, "rb") as handle:
            worked = handle.read()
        self.assertIsNone(JOB_DONE.search(served),
                          f"`serve --workers 0` ran a job:\n{self.server.log_tail()}")
        # create, stop, start and delete.
        self.assertGreaterEqual(len(JOB_DONE.findall(worked)), 4, self.worker.log_tail())

        # The installation lives in PostgreSQL, so no SQLite file was made.
        self.assertFalse(os.path.exists(
            os.path.join(self.server.data_dir, "puddle.db")))
        jobs = self.postgres.query("SELECT kind, state FROM jobs ORDER BY created_at")
        self.assertIn(["system.create", "succeeded"], jobs)
        self.assertIn(["system.delete", "succeeded"], jobs)
        # Both processes used Redis for wake-ups.
        self.assertIn(b"job wake-ups go through Redis", served)
        self.assertIn(b"job wake-ups go through Redis", worked)


if __name__ == "__main__":
    e2e_support.main()
