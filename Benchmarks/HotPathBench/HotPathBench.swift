// Times the store's per-request hot paths on one thread, without HTTP: key hashing, the key lookup and the task
// read, with the read cache (the default) and without it. Run by Benchmarks/run.sh.
import Foundation
import KlingAPI
import KlingCore
import KlingSQLite

/// Runs every step; a free function in its own file so nothing in it is isolated to the main actor (top-level code
/// in `main.swift` is, and hopping to it per call would dominate the figures).
func runHotPathBench(iterations: Int) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hotpath-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let path = folder.appendingPathComponent("kling.sqlite").path
    let cached = try SQLiteTaskStore.sqlite(path: path)
    var uncachedConfiguration = SQLiteTaskStore.Configuration(path: path)
    uncachedConfiguration.readCacheSize = 0
    let uncached = try SQLiteTaskStore(configuration: uncachedConfiguration)

    let service = AccountService(store: cached)
    let account = try await service.createAccount(name: "bench", credits: 0)
    let key = try await service.createKey(accountName: "bench")
    let request = GenerationRequest(prompt: "A red fox runs through snow at dawn", duration: 5, mode: .std, audio: true)
    let task = TaskRecord(
        id: "task_" + APIKeys.randomID(), accountID: account.id, dialect: "market", model: "kling-3.0/video", request: request,
        params: #"{"input":{"prompt":"A red fox runs through snow at dawn"}}"#, createdAt: 1, updatedAt: 1)
    try await cached.insert(task, maxActiveTasks: nil)

    func measure(_ name: String, _ body: () async throws -> Void) async rethrows {
        for _ in 0..<(iterations / 10) { try await body() }
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<iterations { try await body() }
        let elapsed = clock.now - start
        let micros = Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6
        print("| \(name) | \(String(format: "%.2f", micros / Double(iterations))) |")
    }

    print("| step (\(iterations) calls, one thread) | µs per call |")
    print("|---|---|")
    let hash = APIKeys.hash(key.key)
    await measure("SHA-256 of the key") { _ = APIKeys.hash(key.key) }
    try await measure("key lookup, read cache") { _ = try await cached.account(forKeyHash: hash) }
    try await measure("key lookup, SQLite read") { _ = try await uncached.account(forKeyHash: hash) }
    try await measure("task read, read cache") { _ = try await cached.task(id: task.id, accountID: account.id) }
    try await measure("task read, SQLite read") { _ = try await uncached.task(id: task.id, accountID: account.id) }
}
