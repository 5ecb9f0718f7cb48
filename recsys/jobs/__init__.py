"""Background jobs: long work that survives leaving a page, owned by the server process.

`runner.JobRunner` runs job functions on a small thread pool, records each job in the store's
`jobs` table (`recsys.store.jobs`), feeds their progress through the one progress callback
(`recsys.core.progress`) and stops a job by raising `JobStopped` from that callback. The job
kinds (embed, train, evaluate, map...) and the use cases they call are named in
`recsys.usecases.jobs`.
"""
