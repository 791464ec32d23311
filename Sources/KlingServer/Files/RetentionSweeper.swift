import Foundation
import KlingCore
import Logging
import ServiceLifecycle

/// Deletes result files of tasks completed longer ago than the result retention (and marks those tasks), and uploads
/// older than the upload retention.
struct RetentionSweeper: Service {
    let store: any RetentionStore
    let artifactDirectory: URL
    let resultRetention: Duration
    let uploadRetention: Duration
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // Shutdown stops a sweep that waits for the store (a database that went away).
            _ = await cancelWhenGracefulShutdown { await self.sweep() }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    func sweep() async {
        let now = TaskWorker.nowMillis()
        do {
            while true {
                let ids = try await store.tasksWithResults(completedBefore: now - resultRetention.milliseconds, limit: 100)
                if ids.isEmpty { break }
                for id in ids {
                    try? FileManager.default.removeItem(at: artifactDirectory.appendingPathComponent("results/\(id)", isDirectory: true))
                }
                try await store.markResultsExpired(taskIDs: ids, now: now)
                logger.info("deleted expired results", metadata: ["tasks": "\(ids.count)"])
            }
        } catch {
            if !Task.isShuttingDownGracefully { logger.error("result retention sweep failed", metadata: ["error": "\(error)"]) }
        }
        let cutoff = Date(timeIntervalSince1970: Double(now - uploadRetention.milliseconds) / 1000)
        let uploads = artifactDirectory.appendingPathComponent("uploads", isDirectory: true)
        guard let files = FileManager.default.enumerator(at: uploads, includingPropertiesForKeys: [.contentModificationDateKey, .isRegularFileKey])
        else { return }
        var removed = 0
        for case let file as URL in files {
            let values = try? file.resourceValues(forKeys: [.contentModificationDateKey, .isRegularFileKey])
            if values?.isRegularFile == true, let modified = values?.contentModificationDate, modified < cutoff {
                if (try? FileManager.default.removeItem(at: file)) != nil { removed += 1 }
            }
        }
        if removed > 0 { logger.info("deleted expired uploads", metadata: ["files": "\(removed)"]) }
    }
}
