import AsyncHTTPClient
import Foundation
import NIOCore

extension UpstreamHTTP {
    /// Streams `GET path` into `file` (created or replaced), refusing more than `maxBytes` (by `Content-Length` before
    /// any byte is written, and by count while streaming). Only for the provider's own server: the address is the
    /// operator's setting, so private addresses are allowed here; user-supplied links go through the safe fetcher.
    func download(_ path: String, headers: [(String, String)], to file: URL, maxBytes: Int, timeout: Duration = .seconds(600)) async throws {
        var request = HTTPClientRequest(url: baseURL + path)
        request.headers.add(name: "User-Agent", value: "KlingKit/1.0 (upstream engine)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        do {
            let response = try await client.execute(request, timeout: .milliseconds(max(1, timeout.milliseconds)))
            let status = Int(response.status.code)
            guard status == 200 else {
                let body = try? await response.body.collect(upTo: 64 << 10)
                let text = body.map { String(buffer: $0).prefix(200) } ?? ""
                throw failure(
                    status: status, message: "GET \(path) answered \(status)\(text.isEmpty ? "" : ": \(text)")",
                    retryAfter: response.headers.first(name: "retry-after").flatMap(Self.retryAfter))
            }
            if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > maxBytes {
                throw UpstreamError.rejected(engine, status: nil, message: "GET \(path): the file is \(length) bytes, over the \(maxBytes)-byte limit")
            }
            _ = FileManager.default.createFile(atPath: file.path, contents: nil)
            let handle = try FileHandle(forWritingTo: file)
            defer { try? handle.close() }
            var total = 0
            for try await chunk in response.body {
                total += chunk.readableBytes
                guard total <= maxBytes else {
                    throw UpstreamError.rejected(engine, status: nil, message: "GET \(path): the file is over the \(maxBytes)-byte limit")
                }
                try handle.write(contentsOf: Data(chunk.readableBytesView))
            }
        } catch let error as UpstreamError {
            throw error
        } catch {
            if error is CancellationError || (error as? HTTPClientError) == .cancelled { throw CancellationError() }
            throw UpstreamError.unavailable(engine, status: nil, message: "GET \(path) failed: \(Self.reason(error))")
        }
    }
}
