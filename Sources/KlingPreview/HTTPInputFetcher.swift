import AsyncHTTPClient
import Foundation
import KlingCore
import NIOCore

/// Downloads user-supplied input URLs (http and https only) to files, streaming with a hard byte limit and a total timeout.
public struct HTTPInputFetcher: InputFetching {
    /// Fetch limits.
    public struct Configuration: Sendable {
        /// Total time allowed for one download, from connecting to the last byte. Default 30 s.
        public var timeout: Duration = .seconds(30)

        public init() {}
    }

    private let client: HTTPClient
    private let configuration: Configuration

    /// One client for the process's lifetime: at most 3 redirects and no cycles, 10 s to connect (failed connection
    /// attempts are retried within that), no decompression (the byte limit counts what arrives).
    static let sharedClient = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup,
        configuration: HTTPClient.Configuration(
            redirectConfiguration: .follow(max: 3, allowCycles: false),
            timeout: .init(connect: .seconds(10), read: .seconds(30)),
            decompression: .disabled))

    /// Uses a process-wide client  that is never shut down.
    public init(configuration: Configuration = .init()) {
        self.init(configuration: configuration, client: Self.sharedClient)
    }

    /// Uses `client`, which the caller owns and shuts down.
    public init(configuration: Configuration = .init(), client: HTTPClient) {
        self.client = client
        self.configuration = configuration
    }

    public func fetch(_ url: String, field: String, maxBytes: Int, to destination: URL) async throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", components.host?.isEmpty == false
        else {
            throw EngineError.badInput("\(field): \(url) is not an http or https URL")
        }
        // Private-address refusal (SSRF protection) belongs here: resolve the host, refuse loopback, private,
        // link-local and unique-local addresses, and apply the same check to every redirect target.
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await download(url, field: field, maxBytes: maxBytes, to: destination)
                }
                group.addTask { [timeout = configuration.timeout] in
                    try await Task.sleep(for: timeout)
                    throw EngineError.badInput("\(field): could not fetch \(url): timed out after \(timeout)")
                }
                defer { group.cancelAll() }
                try await group.next()
            }
        } catch {
            try? FileManager.default.removeItem(at: destination)
            try Task.checkCancellation()
            throw error
        }
    }

    /// Streams the body of `url` into `destination`, stopping as soon as more than `maxBytes` arrive.
    private func download(_ url: String, field: String, maxBytes: Int, to destination: URL) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "User-Agent", value: "KlingKit/1.0 (input fetcher)")
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(Int64(configuration.timeout.components.seconds)))
        } catch {
            throw Self.failure(field, url, error)
        }
        guard (200..<300).contains(response.status.code) else {
            throw EngineError.badInput("\(field): could not fetch \(url): HTTP \(response.status.code)")
        }
        if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > maxBytes {
            throw EngineError.badInput("\(field): \(url) is \(length) bytes, over the limit of \(maxBytes) bytes")
        }
        guard FileManager.default.createFile(atPath: destination.path, contents: nil) else {
            throw EngineError.renderFailed("\(field): could not create a scratch file for the download")
        }
        let handle = try FileHandle(forWritingTo: destination)
        defer { try? handle.close() }
        var received = 0
        do {
            for try await chunk in response.body {
                received += chunk.readableBytes
                if received > maxBytes {
                    throw EngineError.badInput("\(field): \(url) is over the limit of \(maxBytes) bytes")
                }
                try handle.write(contentsOf: Data(chunk.readableBytesView))
            }
        } catch let error as EngineError {
            throw error
        } catch {
            throw Self.failure(field, url, error)
        }
    }

    private static func failure(_ field: String, _ url: String, _ error: any Error) -> any Error {
        if error is CancellationError || (error as? HTTPClientError) == .cancelled { return CancellationError() }
        let reason: String
        switch error as? HTTPClientError {
        case .deadlineExceeded?, .readTimeout?, .connectTimeout?: reason = "timed out"
        case let error?: reason = "\(error)"
        case nil: reason = String(describing: error)
        }
        return EngineError.badInput("\(field): could not fetch \(url): \(reason)")
    }
}
