// Enqueue-to-claim latency on SQLite and on PostgreSQL (with `KLING_DATABASE_URL`). Run by Benchmarks/postgres.sh.
let tasks = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 500
try await runQueueBench(tasks: tasks)
