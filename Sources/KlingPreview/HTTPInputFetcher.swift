import AsyncHTTPClient
import Foundation
import KlingCore
import NIOCore
import NIOHTTP1

/// Downloads user-supplied input URLs (http and https only) to files, streaming with a hard byte limit and a total timeout.
public struct HTTPInputFetcher: InputFetching {
    /// Fetch limits.
    public struct Configuration: Sendable {
        /// Total time allowed for one download.
        public var timeout: Duration = .seconds(30)

        public init() {}
    }

    /// One client for the process's lifetime: at most 3 redirects, no cycles, 10 s to connect.
    static let sharedClient = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup,
        configuration: HTTPClient.Configuration(
            redirectConfiguration: .follow(max: 3, allowCycles: false),
            timeout: .init(connect: .seconds(10), read: .seconds(30))))

    private let client: HTTPClient
    private let configuration: Configuration

    public init(configuration: Configuration = .init()) {
        self.client = Self.sharedClient
        self.configuration = configuration
    }

    public func fetch(_ url: String, field: String, maxBytes: Int, to destination: URL) async throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", components.host?.isEmpty == false
        else {
            throw EngineError.badInput("\(field): \(url) is not an http or https URL")
        }
        // Where private-address refusal (SSRF protection) will check the resolved address before connecting.
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "User-Agent", value: "KlingKit/1.0 (+input fetcher)")
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .init(configuration.timeout))
        } catch {
            throw EngineError.badInput("\(field): could not fetch \(url): \(Self.describe(error))")
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
            throw EngineError.badInput("\(field): could not fetch \(url): \(Self.describe(error))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout { return "timed out" }
            return "\(error)"
        }
        return String(describing: error)
    }
}
