import Foundation
import KlingCore

/// Fetches inputs, reading links to this server's own files (uploads, results) from disk instead of over the
/// network (where the address rule would rightly refuse loopback); every other URL goes to `network`.
struct LocalFileFetcher: InputFetching {
    let links: ResultLinks
    let artifactDirectory: URL
    let network: any InputFetching

    func fetch(_ url: String, field: String, maxBytes: Int, to destination: URL) async throws {
        guard url.hasPrefix(links.baseURL + "/files/") else {
            return try await network.fetch(url, field: field, maxBytes: maxBytes, to: destination)
        }
        guard let relative = links.artifactPath(ofLink: url, requireCurrent: true, now: TaskWorker.nowMillis() / 1000) else {
            throw EngineError.badInput("\(field): \(url) is an invalid or expired link to this server; upload the file again")
        }
        let source = artifactDirectory.appendingPathComponent(relative).standardizedFileURL
        guard source.path.hasPrefix(artifactDirectory.standardizedFileURL.path + "/"),
            let size = (try? FileManager.default.attributesOfItem(atPath: source.path))?[.size] as? Int
        else {
            throw EngineError.badInput("\(field): \(url) no longer exists (uploads are kept 3 days)")
        }
        guard size <= maxBytes else {
            throw EngineError.badInput("\(field): \(url) is \(size / 1024 / 1024) MB, over the \(maxBytes / 1024 / 1024) MB limit")
        }
        try? FileManager.default.removeItem(at: destination)
        try FileManager.default.copyItem(at: source, to: destination)
    }
}
