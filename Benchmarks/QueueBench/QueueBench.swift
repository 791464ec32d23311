// Measures how long a queued task waits before a worker claims it, the way `TaskWorker` claims: an idle claimer
// sleeps on a WakeSignal (poll interval 500 ms) and claims with `claimNext` when woken.
// - SQLite (one process): the creating code notifies the process's WakeSignal, as TaskService does.
// - PostgreSQL: the creator and the claimer use separate store handles (separate connections, as separate API and
//   worker processes would); the claimer is woken only by the database's NOTIFY, relayed by QueueWakeRelay.
import Foundation
import KlingAPI
import KlingCore
import KlingPostgres
import KlingSQLite
import Logging
import ServiceLifecycle
import Synchronization

func runQueueBench(tasks: Int) async throws {
    print("| store | tasks | enqueue-to-claim median (ms) | p99 (ms) | max (ms) | claimed by poll instead of wake-up |")
    print("|---|---|---|---|---|---|")
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("queuebench-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let sqlite = try SQLiteTaskStore.sqlite(path: folder.appendingPathComponent("kling.sqlite").path)
    try await measure(name: "SQLite (one process)", creator: sqlite, claimer: sqlite, relay: false, tasks: tasks)

    guard let url = ProcessInfo.processInfo.environment["KLING_DATABASE_URL"], !url.isEmpty else {
        print("(KLING_DATABASE_URL not set: PostgreSQL skipped)")
        return
    }
    var logger = Logger(label: "queuebench")
    logger.logLevel = .warning
    let creator = try await PostgresTaskStore.connect(url: url, logger: logger)
    let claimer = try await PostgresTaskStore.connect(url: url, logger: logger)
    try await measure(name: "PostgreSQL (separate connections)", creator: creator, claimer: claimer, relay: true, tasks: tasks)
    await creator.close()
    await claimer.close()
}

/// Creates `tasks` tasks 10 ms apart and records, for each, the time from just before its insert to its claim.
private func measure(name: String, creator: any TaskStore, claimer: any TaskStore, relay: Bool, tasks: Int) async throws {
    let account = try await creator.createAccount(name: "bench-\(UUID().uuidString.prefix(8))", credits: 0, now: 1)
    let request = GenerationRequest(prompt: "A red fox runs through snow at dawn", duration: 5, mode: .std, audio: true).normalized()
    let signal = WakeSignal()
    let figures = Figures()
    let pollInterval = Duration.milliseconds(500)
    let logger = { () -> Logger in
        var logger = Logger(label: "queuebench")
        logger.logLevel = .warning
        return logger
    }()

    try await withThrowingTaskGroup(of: Void.self) { group in
        if relay {
            group.addTask {
                // The relay stops only at graceful shutdown; cancelling the group ends it.
                try await QueueWakeRelay(store: claimer, signal: signal, logger: logger).run()
            }
            try await Task.sleep(for: .milliseconds(500))  // listening
        }
        group.addTask {
            var claimed = 0
            while claimed < tasks {
                let seen = signal.current
                let now = TaskWorker.nowMillis()
                if let task = try await claimer.claimNext(
                    worker: "bench", engine: "preview", now: now, leaseUntil: now + 60_000, maxAttempts: 3)
                {
                    let at = ContinuousClock.now
                    if let start = figures.enqueued.withLock({ $0[task.id] }) {
                        figures.latencies.withLock { $0.append(milliseconds(at - start)) }
                    }
                    _ = try await claimer.complete(
                        taskID: task.id, attempt: task.attempts,
                        result: TaskResult(videoPath: "v", coverPath: nil, width: 1, height: 1, durationSeconds: 5, hasAudio: false),
                        now: now)
                    claimed += 1
                    continue
                }
                let before = ContinuousClock.now
                await signal.wait(since: seen, timeout: pollInterval)
                if ContinuousClock.now - before >= pollInterval { figures.byPoll.withLock { $0 += 1 } }
            }
        }
        for index in 0..<tasks {
            let id = "task_bench_\(index)_\(UUID().uuidString.prefix(8))"
            let now = TaskWorker.nowMillis()
            let task = TaskRecord(
                id: id, accountID: account.id, dialect: "market", model: "kling-3.0/video", request: request, params: "{}",
                createdAt: now, updatedAt: now)
            figures.enqueued.withLock { $0[id] = ContinuousClock.now }
            try await creator.insert(task, maxActiveTasks: nil)
            if !relay { signal.notify() }
            try await Task.sleep(for: .milliseconds(10))
        }
        // Wait for the claimer, then stop the relay.
        while figures.latencies.withLock({ $0.count }) < tasks { try await Task.sleep(for: .milliseconds(50)) }
        group.cancelAll()
    }
    let sorted = figures.latencies.withLock { $0 }.sorted()
    func quantile(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int((Double(sorted.count) * q).rounded(.down)))] }
    print(
        "| \(name) | \(tasks) | \(String(format: "%.2f", quantile(0.5))) | \(String(format: "%.2f", quantile(0.99))) | "
            + "\(String(format: "%.2f", sorted.last ?? 0)) | \(figures.byPoll.withLock { $0 }) |")
}

/// What the creator and the claimer record, shared between them.
private final class Figures: Sendable {
    let enqueued = Mutex<[String: ContinuousClock.Instant]>([:])
    let latencies = Mutex<[Double]>([])
    let byPoll = Mutex(0)
}

private func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}
