import AsyncHTTPClient
import Foundation
import KlingCore
import NIOCore

/// Downloads user-supplied input URLs to files, safely: http and https only, public addresses only, at most
/// 3 redirects (each checked like the first URL), a hard byte limit while streaming and a total timeout.
///
/// The address rule (no loopback, private, carrier-grade NAT, link-local, unique-local, multicast, unspecified or
/// reserved addresses, nor IPv4-mapped forms of them) is applied to every address the host resolves to, and the
/// connection then goes to the address that was checked: the fetcher resolves the name itself and pins the
/// connection with AsyncHTTPClient's `dnsOverride` (the `Host` header, TLS SNI and certificate checks still use the
/// name), so a DNS answer that changes between the check and the connection (DNS rebinding) cannot slip through.
public struct HTTPInputFetcher: InputFetching {
    /// Fetch limits and the address rule.
    public struct Configuration: Sendable {
        /// Total time allowed for one download, from resolving the name to the last byte, redirects included. Default 30 s.
        public var timeout: Duration = .seconds(30)
        /// Time allowed to open one connection (AsyncHTTPClient retries a refused connection until then). Default 5 s.
        public var connectTimeout: Duration = .seconds(5)
        /// Redirects followed at most. Default 3.
        public var maxRedirects = 3
        /// Allow loopback, private and link-local addresses (`KLING_FETCH_ALLOW_PRIVATE=true`). Default `false`.
        /// Only for development and tests: with it on, a request can make the server fetch from its own network.
        public var allowPrivateAddresses = false
        /// Addresses exempt from the address rule while it is on (tests: one loopback address stands in for a public host).
        var exemptAddresses: Set<IPAddress> = []
        /// Answers for host names that bypass the system resolver (tests: a fake name server, to show the connection
        /// goes where the check said).
        var fixedAnswers: [String: [IPAddress]] = [:]

        public init() {}
    }

    private let configuration: Configuration

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    public func fetch(_ url: String, field: String, maxBytes: Int, to destination: URL) async throws {
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

    /// Follows `url` through at most `maxRedirects` redirects, checking every hop, and streams the final body.
    private func download(_ url: String, field: String, maxBytes: Int, to destination: URL) async throws {
        var current = url
        for hop in 0...configuration.maxRedirects {
            let target = try await checkedTarget(current, field: field, original: url, hop: hop)
            let location = try await withClient(pinning: target) { client in
                try await get(target, client: client, field: field, original: url, maxBytes: maxBytes, to: destination)
            }
            guard let location else { return }
            current = location
        }
        throw EngineError.badInput("\(field): \(url) redirects more than \(configuration.maxRedirects) times")
    }

    /// A URL that passed the scheme and address rules, with the address its connection must go to.
    private struct Target {
        var url: String
        var host: String
        /// Resolved and checked; `nil` when the host is an IP literal (AsyncHTTPClient connects to it directly).
        var pinnedAddress: IPAddress?
    }

    private func checkedTarget(_ url: String, field: String, original: String, hop: Int) async throws -> Target {
        // Parsed exactly as AsyncHTTPClient parses it (Foundation's URL), so the pinned name is the one it connects to.
        let via = hop == 0 ? "" : "\(original) redirects to "
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let rawHost = parsed.host, !rawHost.isEmpty
        else {
            throw EngineError.badInput("\(field): \(via)\(url) is not an http or https URL")
        }
        let host = rawHost.hasPrefix("[") && rawHost.hasSuffix("]") ? String(rawHost.dropFirst().dropLast()) : rawHost
        let addresses: [IPAddress]
        do {
            if let literal = IPAddress(host) {
                addresses = [literal]
            } else {
                if let answers = configuration.fixedAnswers[host] {
                    addresses = answers
                } else {
                    addresses = try await HostResolver.addresses(of: host)
                }
            }
        } catch {
            throw EngineError.badInput("\(field): could not fetch \(via)\(url): \(error)")
        }
        if !configuration.allowPrivateAddresses {
            for address in addresses {
                if let reason = address.nonPublicReason, !configuration.exemptAddresses.contains(address) {
                    let resolved = IPAddress(host) == nil ? "\(host) resolves to \(address)," : "\(address) is"
                    throw EngineError.badInput(
                        "\(field): refused to fetch \(via)\(url): \(resolved) \(reason); inputs must be on public addresses")
                }
            }
        }
        return Target(url: url, host: host, pinnedAddress: IPAddress(host) == nil ? addresses[0] : nil)
    }

    /// Runs `body` with a client that connects only to the target's checked address, then shuts the client down.
    private func withClient<T: Sendable>(pinning target: Target, _ body: (HTTPClient) async throws -> T) async throws -> T {
        var clientConfiguration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: Self.timeAmount(configuration.connectTimeout), read: Self.timeAmount(configuration.timeout)),
            decompression: .disabled)
        if let address = target.pinnedAddress {
            clientConfiguration.dnsOverride = [target.host: "\(address)"]
        }
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: clientConfiguration)
        let result: Result<T, any Error>
        do {
            result = .success(try await body(client))
        } catch {
            result = .failure(error)
        }
        try? await client.shutdown()
        return try result.get()
    }

    /// One GET: returns the absolute redirect target for a redirect, or `nil` once the body is in `destination`.
    private func get(
        _ target: Target, client: HTTPClient, field: String, original: String, maxBytes: Int, to destination: URL
    ) async throws -> String? {
        var request = HTTPClientRequest(url: target.url)
        request.method = .GET
        request.headers.add(name: "User-Agent", value: "KlingKit/1.0 (input fetcher)")
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: Self.timeAmount(configuration.timeout))
        } catch {
            throw Self.failure(field, original, error)
        }
        if [301, 302, 303, 307, 308].contains(response.status.code) {
            guard let location = response.headers.first(name: "location"),
                let next = URL(string: location, relativeTo: URL(string: target.url))?.absoluteURL.absoluteString
            else {
                throw EngineError.badInput("\(field): could not fetch \(original): HTTP \(response.status.code) without a usable Location")
            }
            return next
        }
        guard (200..<300).contains(response.status.code) else {
            throw EngineError.badInput("\(field): could not fetch \(original): HTTP \(response.status.code)")
        }
        if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > maxBytes {
            throw EngineError.badInput("\(field): \(original) is \(length) bytes, over the limit of \(maxBytes) bytes")
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
                    throw EngineError.badInput("\(field): \(original) is over the limit of \(maxBytes) bytes")
                }
                try handle.write(contentsOf: Data(chunk.readableBytesView))
            }
        } catch let error as EngineError {
            throw error
        } catch {
            throw Self.failure(field, original, error)
        }
        return nil
    }

    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        .milliseconds(max(1, Int64(duration / .milliseconds(1))))
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
