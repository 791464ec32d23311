// Tasks followed per second at a provider's rate limit, against the theoretical limit: a loopback fake of Kling's
// official API admits `rate` calls per second (token bucket, burst 10); each task costs one create and `queries`
// status queries, so at best `rate / (1 + queries)` tasks finish per second. Every task is forwarded, followed,
// downloaded through the safe fetcher and checked with ffprobe, as in the server.
import Foundation
import KlingAPI
import KlingCore
import KlingPreview
import KlingSQLite
import KlingUpstream
import KlingUpstreamFakes
import Logging

func runUpstreamBench(tasks count: Int, rate: Double, queries: Int) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("upstream-bench-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let store = try SQLiteTaskStore.sqlite(path: folder.appendingPathComponent("kling.sqlite").path)
    let account = try await store.createAccount(name: "bench", credits: 1 << 40, now: TaskWorker.nowMillis())
    let media = try FakeMedia.make(in: folder.appendingPathComponent("media"))
    var script = FakeScript()
    script.queriesUntilDone = queries
    script.withCover = false
    script.rateLimit = .init(perSecond: rate, burst: 10)
    let fake = FakeProvider(flavor: .official, key: "ak", secretKey: "sk-0123456789abcdefghijklmnopqrstuvwx", script: script, videoFile: media.video)

    let now = TaskWorker.nowMillis()
    let request = GenerationRequest(prompt: "A red fox runs through snow at dawn", duration: 5, mode: .std, audio: true)
    for index in 0..<count {
        try await store.insert(
            TaskRecord(
                id: "task_\(index)", accountID: account.id, dialect: "market", model: "kling-3.0/video", request: request, params: "{}",
                createdAt: now + Int64(index), updatedAt: now, credits: 1),
            maxActiveTasks: nil)
    }
    var jobs: [RenderJob] = []
    for _ in 0..<count {
        guard let task = try await store.claimNext(worker: "bench", engine: "bench", now: now, leaseUntil: now + 86_400_000, maxAttempts: 3)
        else { break }
        let output = folder.appendingPathComponent("results/\(task.id)")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        jobs.append(RenderJob(taskID: task.id, request: task.request, outputDirectory: output, scratchDirectory: output, attempt: task.attempts))
    }

    var fetching = HTTPInputFetcher.Configuration()
    fetching.allowPrivateAddresses = true
    var following = UpstreamEngine.Configuration()
    following.firstPoll = .milliseconds(100)
    following.maxPollInterval = .seconds(1)
    var logger = Logger(label: "upstream-bench")
    logger.logLevel = .error
    let (fetcher, settings, log, claimed) = (HTTPInputFetcher(configuration: fetching), following, logger, jobs)
    let (elapsed, followed) = try await fake.run { base in
        let engine = UpstreamEngine(
            provider: await KlingOfficialProvider(baseURL: base, accessKey: "ak", secretKey: "sk-0123456789abcdefghijklmnopqrstuvwx"),
            limiter: ProviderRateLimiter(perSecond: rate), store: store, fetcher: fetcher, callbacks: nil, configuration: settings,
            logger: log)
        let clock = ContinuousClock()
        let start = clock.now
        let followed = try await withThrowingTaskGroup(of: Int.self) { group in
            for job in claimed { group.addTask { _ = try await engine.render(job) { _ in }; return 1 } }
            return try await group.reduce(0, +)
        }
        return (clock.now - start, followed)
    }
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let record = fake.record
    let measured = Double(followed) / seconds
    let theoretical = rate / Double(1 + queries)
    print("upstream following: \(followed) tasks, \(queries) queries each, provider limit \(rate) calls/s")
    print(String(format: "  elapsed %.2f s; %.2f tasks/s followed vs %.2f theoretical (%.1f%%)", seconds, measured, theoretical, measured / theoretical * 100))
    if let first = record.admitted.first, let last = record.admitted.last, last > first {
        let span = last - first
        let callSeconds = Double(span.components.seconds) + Double(span.components.attoseconds) / 1e18
        let callRate = Double(record.admitted.count - 1) / callSeconds
        print(String(format: "  provider calls: %.2f/s from the first to the last vs %.2f allowed (%.1f%%)", callRate, rate, callRate / rate * 100))
    }
    print("  provider saw \(record.creates.count) creates, \(record.queries.count) queries, \(record.rateRefusals) refused by its limit, at most \(record.maxAdmittedPerSecond) calls in any second")
}
