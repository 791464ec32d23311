import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The outcome of a download.
public struct DownloadResult: Sendable, Hashable {
    /// Where the file is.
    public var file: URL
    /// Its size in bytes.
    public var bytes: Int64
    /// How many times the transfer was resumed with a `Range` request after an interruption.
    public var resumes: Int
}

extension KlingClient {
    /// Downloads a finished task's video to `destination`; see ``download(url:to:progress:)``.
    /// - Throws: ``KlingError`` of kind `.api` when the task has not succeeded (its state is in the message).
    @discardableResult
    public func download(
        taskID: String, to destination: URL, progress: (@Sendable (Int64, Int64?) -> Void)? = nil
    ) async throws(KlingError) -> DownloadResult {
        let task = try await task(taskID)
        guard task.state == .succeeded, let url = task.videoURL else {
            let why = task.failure.map { ": \($0.message)" } ?? ""
            throw KlingError(
                .api, message: "task \(taskID) has no video to download (it is \(task.state)\(why))", taskID: taskID)
        }
        return try await download(url: url, to: destination, progress: progress)
    }

    /// Streams a file to `destination` (written as `destination.part`, renamed when complete).
    ///
    /// An interrupted transfer resumes where it stopped with an HTTP `Range` request (also in a later call, when the
    /// partial file and the remote file's size and validator still match), up to the configured number of attempts
    /// without progress and the download time limit. `progress` receives the bytes written and the total when known.
    @discardableResult
    public func download(
        url: String, to destination: URL, progress: (@Sendable (Int64, Int64?) -> Void)? = nil
    ) async throws(KlingError) -> DownloadResult {
        let partial = destination.appendingPathExtension("part")
        let marker = destination.appendingPathExtension("part.info")
        let deadline = ContinuousClock.now + configuration.timeouts.download
        var previous = PartialMarker.read(marker, url: url)
        if previous == nil { try? FileManager.default.removeItem(at: partial) }
        var resumes = 0
        var failuresWithoutProgress = 0
        while true {
            let offset = (try? FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? Int64) ?? 0
            do throws(KlingError) {
                let total = try await transfer(
                    url: url, to: partial, offset: offset, known: previous, marker: marker, deadline: deadline, progress: progress)
                try? FileManager.default.removeItem(at: destination)
                do {
                    try FileManager.default.moveItem(at: partial, to: destination)
                } catch {
                    throw KlingError(.download, message: "could not move the download to \(destination.path): \(error)")
                }
                try? FileManager.default.removeItem(at: marker)
                return DownloadResult(file: destination, bytes: total, resumes: resumes)
            } catch {
                let now = (try? FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? Int64) ?? 0
                failuresWithoutProgress = now > offset ? 0 : failuresWithoutProgress + 1
                guard error.kind == .transport || error.isTransient, failuresWithoutProgress < configuration.maxAttempts,
                    ContinuousClock.now < deadline
                else {
                    var error = error
                    if error.kind == .transport { error.kind = .download }
                    error.message += now > 0 ? " (\(now) bytes kept in \(partial.path); run the download again to resume)" : ""
                    throw error
                }
                logger.debug("download interrupted; resuming", metadata: ["bytes": "\(now)", "error": "\(error)"])
                previous = PartialMarker.read(marker, url: url)
                resumes += 1
                if failuresWithoutProgress > 0 { try? await Task.sleep(for: .milliseconds(500 * failuresWithoutProgress)) }
            }
        }
    }

    /// One GET from `offset`, appended to `partial`; returns the file's total size once everything is written.
    private func transfer(
        url: String, to partial: URL, offset: Int64, known: PartialMarker?, marker: URL, deadline: ContinuousClock.Instant,
        progress: (@Sendable (Int64, Int64?) -> Void)?
    ) async throws(KlingError) -> Int64 {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: configuration.userAgent)
        if offset > 0 {
            request.headers.add(name: "Range", value: "bytes=\(offset)-")
            if let validator = known?.validator { request.headers.add(name: "If-Range", value: validator) }
        }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, deadline: .now() + TimeAmount(deadline - ContinuousClock.now))
        } catch {
            throw KlingError(.transport, message: "GET \(Self.redacted(url)) failed: \(error)")
        }
        let status = Int(response.status.code)
        var start: Int64 = 0
        var total: Int64?
        switch status {
        case 206:
            guard let range = response.headers.first(name: "Content-Range").flatMap(ContentRange.init), range.start == offset,
                known == nil || known?.total == range.total
            else {
                // Not the range asked for, or a different file: start over.
                try? FileManager.default.removeItem(at: partial)
                throw KlingError(.transport, message: "the server answered a different range; starting over")
            }
            start = offset
            total = range.total
        case 200:
            total = response.headers.first(name: "Content-Length").flatMap { Int64($0) }
        case 416 where known?.total == offset:
            return offset  // everything was already there
        default:
            let body = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
            var error = KlingError(
                .download, message: "GET \(Self.redacted(url)) answered HTTP \(status)\(body.isEmpty ? "" : ": \(body.prefix(200))")",
                code: String(status), httpStatus: status)
            if status == 403 { error.message += "; the link may have expired: ask for the task again to get a fresh link" }
            if status == 429 || status >= 500 { error.kind = .api }
            throw error
        }
        let validator = response.headers.first(name: "ETag") ?? response.headers.first(name: "Last-Modified")
        PartialMarker(url: url, total: total, validator: validator).write(marker)
        do {
            if start == 0 { _ = FileManager.default.createFile(atPath: partial.path, contents: nil) }
            let handle = try FileHandle(forWritingTo: partial)
            defer { try? handle.close() }
            try handle.truncate(atOffset: UInt64(start))
            try handle.seek(toOffset: UInt64(start))
            var written = start
            progress?(written, total)
            for try await chunk in response.body {
                try handle.write(contentsOf: Data(chunk.readableBytesView))
                written += Int64(chunk.readableBytes)
                progress?(written, total)
            }
            if let total, written != total {
                throw KlingError(.transport, message: "the connection closed after \(written) of \(total) bytes")
            }
            return written
        } catch let error as KlingError {
            throw error
        } catch {
            throw KlingError(.transport, message: "the transfer was interrupted: \(error)")
        }
    }

    /// The URL without its query (signed links carry their signature there).
    static func redacted(_ url: String) -> String {
        url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
    }
}

/// `Content-Range: bytes START-END/TOTAL`.
struct ContentRange {
    var start: Int64
    var total: Int64?

    init?(_ header: String) {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0] == "bytes" else { return nil }
        let rangeAndTotal = parts[1].split(separator: "/", maxSplits: 1)
        guard let range = rangeAndTotal.first, let dash = range.firstIndex(of: "-"), let start = Int64(range[..<dash]) else { return nil }
        self.start = start
        self.total = rangeAndTotal.count == 2 ? Int64(rangeAndTotal[1]) : nil
    }
}

/// What is known about a partial download, kept next to it so a later call can resume it safely.
struct PartialMarker: Codable, Hashable {
    /// The source without its query (signed links change their signature, not their file).
    var source: String
    var total: Int64?
    var validator: String?

    init(url: String, total: Int64?, validator: String?) {
        self.source = KlingClient.redacted(url)
        self.total = total
        self.validator = validator
    }

    static func read(_ file: URL, url: String) -> PartialMarker? {
        guard let data = try? Data(contentsOf: file), let marker = try? JSONDecoder().decode(PartialMarker.self, from: data),
            marker.source == KlingClient.redacted(url)
        else { return nil }
        return marker
    }

    func write(_ file: URL) {
        try? JSONEncoder().encode(self).write(to: file, options: .atomic)
    }
}
